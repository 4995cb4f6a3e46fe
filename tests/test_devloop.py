"""The development loop: opt-in compiling on load (RESUMABLE_AUTOCOMPILE=1 or
`resumable.autocompile()`), which is off by default, and `resumable compile
--watch`, which compiles a file again when it changes. Real processes, real
files."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.procs import clean_env, python, wait_until

SHOP = """
import resumable


async def price(n):
    return n * 10


@resumable.function
async def total(n):
    return await price(n) + {extra}
"""

RUN = """
import resumable, shop
with resumable.Runtime("memory://") as rt:
    print(rt.run(shop.total, 3))
"""


def write(folder: Path, extra: int) -> Path:
    path = folder / "shop.py"
    path.write_text(textwrap.dedent(SHOP.format(extra=extra)))
    return path


def test_without_autocompile_a_module_never_compiled_is_stale_code(tmp_path: Path) -> None:
    write(tmp_path, 10)
    done = python(RUN, cwd=tmp_path, env=clean_env())
    assert done.returncode == 1
    assert "StaleCodeError" in done.stderr and "resumable compile" in done.stderr
    assert not (tmp_path / "__resumable__").exists()


def test_autocompile_compiles_on_load_and_again_after_an_edit(tmp_path: Path) -> None:
    env = clean_env(RESUMABLE_AUTOCOMPILE="1")
    write(tmp_path, 1)
    first = python(RUN, cwd=tmp_path, env=env)
    assert (first.returncode, first.stdout) == (0, "31\n"), first.stderr
    generated = tmp_path / "__resumable__" / "shop.py"
    before = generated.read_text()
    write(tmp_path, 5)  # an edit of the function: its generated module is stale now
    second = python(RUN, cwd=tmp_path, env=env)
    assert (second.returncode, second.stdout) == (0, "35\n"), second.stderr
    assert generated.read_text() != before


def test_autocompile_called_after_the_import_covers_that_module(tmp_path: Path) -> None:
    write(tmp_path, -23)
    code = """
    import resumable, shop          # imported before autocompile is on
    resumable.autocompile()
    with resumable.Runtime("memory://") as rt:
        print(rt.run(shop.total, 3))
    resumable.autocompile(False)
    """
    done = python(code, cwd=tmp_path, env=clean_env(RESUMABLE_AUTOCOMPILE="1"))
    assert (done.returncode, done.stdout) == (0, "7\n"), done.stderr


def test_autocompile_off_wins_over_the_environment(tmp_path: Path) -> None:
    write(tmp_path, 2)
    code = "import resumable\nresumable.autocompile(False)\n" + RUN
    done = python(code, cwd=tmp_path, env=clean_env(RESUMABLE_AUTOCOMPILE="1"))
    assert done.returncode == 1 and "StaleCodeError" in done.stderr


def test_a_compile_error_on_load_names_the_file_line_and_fix(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(
        textwrap.dedent(
            """
            import resumable


            async def price(n):
                return n


            @resumable.function
            async def total(n):
                return sum(await price(i) for i in range(n))
            """
        )
    )
    done = python(RUN, cwd=tmp_path, env=clean_env(RESUMABLE_AUTOCOMPILE="1"))
    assert done.returncode == 1
    assert "StaleCodeError" in done.stderr
    assert "compiling it on load failed" in done.stderr
    assert "shop.py:11:" in done.stderr and "fix:" in done.stderr


def test_autocompile_without_the_compiler_says_what_to_install(tmp_path: Path) -> None:
    write(tmp_path, 2)
    code = "import sys\nsys.modules['resumable_compiler'] = None\n" + RUN
    done = python(code, cwd=tmp_path, env=clean_env(RESUMABLE_AUTOCOMPILE="1"))
    assert done.returncode == 1
    assert "pip install 'resumable[compiler]'" in done.stderr


def test_compile_watch_compiles_changes_reports_errors_and_removes_orphans(
    tmp_path: Path,
) -> None:
    source = write(tmp_path, 1)
    generated = tmp_path / "__resumable__" / "shop.py"
    proc = subprocess.Popen(
        [sys.executable, "-m", "resumable", "compile", "--watch", str(tmp_path)],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(generated.exists, "the first compile", proc=proc)
        first = generated.read_text()
        write(tmp_path, 2)
        wait_until(lambda: generated.read_text() != first, "the edit compiled", proc=proc)
        # A compile error is reported; the watcher goes on.
        source.write_text(source.read_text().replace("await price(n) + 2", "[await price(n)"))
        (tmp_path / "other.py").write_text("import resumable\n\n\n@resumable.function\n"
                                           "async def f():\n    return 1\n")  # fmt: skip
        other = tmp_path / "__resumable__" / "other.py"
        wait_until(other.exists, "a new file compiled", proc=proc)
        other.parent.joinpath("keep").write_text("")
        (tmp_path / "other.py").unlink()
        wait_until(lambda: not other.exists(), "the orphan removed", proc=proc)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "watching" in out and "stopped" in out
    assert "shop.py:" in out and "error" in out  # the syntax error, with its place
    assert "__resumable__/other.py: removed" in out
