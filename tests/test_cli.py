"""`resumable compile`: output format, exit status, folders, --check, caching, determinism.

The contract of the command itself (format, exit status, no traceback, the
installed script, the repository's examples) is checked in subprocesses; the
--check/cache/removal cycle runs `resumable.cli.main` in-process, which is what
the script calls, to keep the suite fast.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from resumable.cli import main

REPO = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "resumable"

GOOD = """\
import resumable


@resumable.function
async def fetch(x):
    return x


@resumable.function
async def total(xs):
    out = 0
    for x in xs:
        out += await fetch(x)
    return out
"""

SHOP = """\
import resumable


@resumable.function
async def shop(items):
    total = sum(await price(i) for i in items)
    return total
"""

TWO_ERRORS = """\
import resumable


@resumable.function
async def stream(xs):
    y = locals()
    pass
    yield 1
"""

HEADER_LINE = re.compile(
    r"^(?P<path>\S+?):(?P<line>\d+):(?P<col>\d+): error\[(?P<code>E\d\d)\]: .+$"
)
SUMMARY = re.compile(
    r"^resumable compile: (?P<functions>\d+) functions? in (?P<modules>\d+) modules?, "
    r"(?P<errors>\d+) errors? \(\d+\.\d\ds\)$"
)
CHECK_SUMMARY = re.compile(
    r"^resumable compile --check: (?P<functions>\d+) functions? in (?P<modules>\d+) modules?, "
    r"(?P<verdict>up to date|\d+ out of date), (?P<errors>\d+) errors? \(\d+\.\d\ds\)$"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run(*args: str, cwd: Path, script: bool = False) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "resumable.cli"]
    return subprocess.run(
        [*command, "compile", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def compile_here(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    """`resumable compile ARGS` in-process, in the current directory."""
    status = main(["compile", *args])
    captured = capsys.readouterr()
    return status, (captured.out + captured.err).splitlines()


def diagnostics(lines: list[str]) -> list[tuple[str, int, int, str, str, str, str]]:
    """(path, line, col, code, source, caret, fix) of every error block."""
    out = []
    for i, text in enumerate(lines):
        m = HEADER_LINE.match(text)
        if m:
            source, caret, fix = lines[i + 1 : i + 4]
            out.append((m["path"], int(m["line"]), int(m["col"]), m["code"], source, caret, fix))
    return out


def test_errors_of_every_file_are_printed_like_a_compiler(tmp_path: Path) -> None:
    write(tmp_path / "shop.py", SHOP)
    write(tmp_path / "app" / "stream.py", TWO_ERRORS)
    write(tmp_path / "syntax.py", "import resumable\n\nx = (1,\n")
    write(tmp_path / "good.py", GOOD)
    proc = run("shop.py", "app/stream.py", "syntax.py", "good.py", "missing.py", cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    lines = proc.stdout.splitlines()

    found = diagnostics(lines)
    assert [(p, line, col, code) for p, line, col, code, *_ in found] == [
        ("shop.py", 6, 17, "E02"),
        ("app/stream.py", 6, 9, "E03"),
        ("app/stream.py", 8, 5, "E01"),
        ("syntax.py", 3, 5, "E00"),
    ]
    # the source line (stripped, indented by 4), a caret under the column, the fix
    expected_at = ["await price(i)", "locals()", "yield", "("]
    for (path, line, col, _, source, caret, fix), at in zip(found, expected_at, strict=True):
        original = (tmp_path / path).read_text().splitlines()[line - 1]
        assert source == "    " + original.strip()
        assert caret.strip() == "^"
        assert source[caret.index("^") :].startswith(at), (source, caret)
        assert caret.index("^") - 4 == col - 1 - (len(original) - len(original.lstrip()))
        assert fix.startswith("  fix: ") and len(fix) > len("  fix: ")
    assert "shop.py:6:17: error[E02]: await inside a generator expression" in proc.stdout
    assert "syntax.py:3:5: error[E00]: '(' was never closed" in proc.stdout

    assert "missing.py: error: no such file or directory" in proc.stdout
    m = SUMMARY.match(lines[-1])
    assert m, lines[-1]
    assert (m["modules"], m["errors"]) == ("1", "5")  # 4 in the files + the missing path
    # the good file still compiles; the bad ones produce nothing
    assert (tmp_path / "__resumable__" / "good.py").is_file()
    assert not (tmp_path / "__resumable__" / "shop.py").exists()
    assert not (tmp_path / "__resumable__" / "syntax.py").exists()
    assert not (tmp_path / "app" / "__resumable__").exists()


def make_tree(root: Path) -> None:
    write(root / "pkg" / "__init__.py", "")
    write(root / "pkg" / "top.py", GOOD)
    write(root / "pkg" / "deep" / "__init__.py", "")
    write(root / "pkg" / "deep" / "er" / "__init__.py", "")
    write(root / "pkg" / "deep" / "er" / "mod.py", GOOD.replace("total", "grand"))
    write(root / "pkg" / "plain.py", "x = 1\n")
    # never compiled: hidden folders and generated folders (both with bad code)
    write(root / "pkg" / ".hidden" / "bad.py", SHOP)
    write(root / "pkg" / "__resumable__" / "bad.py", SHOP)


def test_folders_are_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    status, lines = compile_here(capsys, "pkg")
    assert status == 0, lines
    assert not any("error" in line for line in lines[:-1]), lines
    assert sorted(lines[:-1]) == [
        "pkg/__resumable__/top.py: written",
        "pkg/deep/er/__resumable__/mod.py: written",
    ]
    m = SUMMARY.match(lines[-1])
    assert m, lines[-1]
    assert (m["functions"], m["modules"], m["errors"]) == ("4", "2", "0")
    assert not (tmp_path / "pkg" / ".hidden" / "__resumable__").exists()
    assert not (tmp_path / "pkg" / "__resumable__" / "__resumable__").exists()
    assert not (tmp_path / "pkg" / "__resumable__" / "plain.py").exists()

    for generated in (
        tmp_path / "pkg" / "__resumable__" / "top.py",
        tmp_path / "pkg" / "deep" / "er" / "__resumable__" / "mod.py",
    ):
        text = generated.read_text()
        assert text.startswith("# Generated by `resumable compile`")
        compile(text, str(generated), "exec")
    assert "function_id = 'pkg.top:total'" in (tmp_path / "pkg/__resumable__/top.py").read_text()


def test_output_is_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path)
    out = tmp_path / "pkg" / "deep" / "er" / "__resumable__" / "mod.py"
    monkeypatch.chdir(tmp_path)
    assert compile_here(capsys, "pkg")[0] == 0
    first = out.read_bytes()
    assert b"function_id = 'pkg.deep.er.mod:grand'" in first
    out.unlink()
    assert compile_here(capsys, "pkg/deep/er/mod.py")[0] == 0
    assert out.read_bytes() == first
    out.unlink()
    # the real command, from another working directory
    proc = run("mod.py", cwd=out.parent.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.read_bytes() == first


def test_check_cache_and_stale_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    source = write(tmp_path / "app" / "flow.py", GOOD)
    out = tmp_path / "app" / "__resumable__" / "flow.py"

    # --check writes nothing and fails when the generated module is missing
    status, lines = compile_here(capsys, "--check", "app")
    assert status == 1
    assert "app/__resumable__/flow.py: missing: run `resumable compile app/flow.py`" in lines
    m = CHECK_SUMMARY.match(lines[-1])
    assert m and m["verdict"] == "1 out of date", lines
    assert not out.parent.exists()

    status, lines = compile_here(capsys, "app")
    assert status == 0
    assert lines[0] == "app/__resumable__/flow.py: written"
    m = SUMMARY.match(lines[-1])
    assert m and (m["functions"], m["modules"], m["errors"]) == ("2", "1", "0"), lines

    status, lines = compile_here(capsys, "--check", "app")
    assert status == 0
    m = CHECK_SUMMARY.match(lines[-1])
    assert m and (m["functions"], m["modules"], m["verdict"]) == ("2", "1", "up to date"), lines

    # recompiling an unchanged file is a cache hit: nothing is written
    os.utime(out, ns=(1_000_000_000, 1_000_000_000))
    before = out.read_bytes()
    status, lines = compile_here(capsys, "app/flow.py")
    assert status == 0
    assert len(lines) == 1 and SUMMARY.match(lines[0]), lines
    assert out.stat().st_mtime_ns == 1_000_000_000
    assert out.read_bytes() == before

    # an edited source makes the generated module stale; --check still writes nothing
    source.write_text(GOOD.replace("out = 0", "out = 1"))
    status, lines = compile_here(capsys, "--check", "app")
    assert status == 1
    assert "app/__resumable__/flow.py: stale: run `resumable compile app/flow.py`" in lines
    assert out.read_bytes() == before
    status, lines = compile_here(capsys, "app")
    assert status == 0 and lines[0] == "app/__resumable__/flow.py: written"
    assert out.read_bytes() != before
    assert "L.out = 1" in out.read_text()


def test_a_changed_compiler_makes_every_module_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from resumable_compiler import build

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "flow.py", GOOD)
    out = tmp_path / "__resumable__" / "flow.py"
    assert compile_here(capsys, ".")[0] == 0
    before = out.read_text()
    assert f"compiler {build.COMPILER_DIGEST}," in before
    monkeypatch.setattr(build, "COMPILER_DIGEST", "0123456789ab")
    status, lines = compile_here(capsys, "--check", ".")
    assert status == 1 and "__resumable__/flow.py: stale: run `resumable compile flow.py`" in lines
    assert compile_here(capsys, ".")[1][0] == "__resumable__/flow.py: written"
    assert "compiler 0123456789ab," in out.read_text()
    assert compile_here(capsys, "--check", ".")[0] == 0


def test_the_compiler_digest_covers_the_compiler_files() -> None:
    from resumable_compiler import cache

    folder = Path(cache.__file__).parent
    assert {"cache.py", "build.py", "parse.py", "render.py"} <= {
        p.name for p in folder.glob("*.py")
    }
    assert cache.compiler_digest() == cache.COMPILER_DIGEST


def test_a_no_change_recompile_imports_neither_libcst_nor_jinja2(tmp_path: Path) -> None:
    write(tmp_path / "app" / "flow.py", GOOD)
    assert run("app", cwd=tmp_path).returncode == 0
    probe = (
        "import sys\n"
        "from resumable.cli import main\n"
        "status = main(['compile', 'app'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('libcst', 'jinja2'))\n"
        "print('heavy:', heavy)\n"
        "sys.exit(status)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "heavy: []" in proc.stdout and "written" not in proc.stdout, proc.stdout
    # an edited source still compiles (and imports them)
    write(tmp_path / "app" / "flow.py", GOOD.replace("out = 0", "out = 1"))
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "flow.py: written" in proc.stdout, proc.stdout
    assert "'libcst" in proc.stdout


def test_module_whose_functions_were_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    source = write(tmp_path / "flow.py", GOOD)
    out = tmp_path / "__resumable__" / "flow.py"
    assert compile_here(capsys, "flow.py")[0] == 0
    assert out.is_file()

    source.write_text("import resumable\n\n\nasync def fetch(x):\n    return x\n")
    status, lines = compile_here(capsys, "--check", ".")
    assert status == 1
    assert "__resumable__/flow.py: stale: run `resumable compile flow.py`" in lines
    assert out.is_file()

    status, lines = compile_here(capsys, ".")
    assert status == 0
    assert "__resumable__/flow.py: removed" in lines
    assert not out.exists()
    status, lines = compile_here(capsys, "--check", ".")
    assert status == 0
    m = CHECK_SUMMARY.match(lines[-1])
    assert m and (m["functions"], m["modules"], m["verdict"]) == ("0", "0", "up to date"), lines


def test_stale_module_of_a_source_that_dropped_resumable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    source = write(tmp_path / "flow.py", GOOD)
    assert compile_here(capsys, ".")[0] == 0
    source.write_text("x = 1\n")
    status, _ = compile_here(capsys, "--check", ".")
    assert status == 1


def test_check_reports_errors_with_status_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "shop.py", SHOP)
    status, lines = compile_here(capsys, "--check", "shop.py", "nowhere")
    assert status == 1
    assert any(line.startswith("shop.py:6:17: error[E02]: ") for line in lines)
    assert "nowhere: error: no such file or directory" in lines
    assert not (tmp_path / "__resumable__").exists()


def test_examples_are_up_to_date() -> None:
    proc = run("--check", "examples", cwd=REPO, script=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = CHECK_SUMMARY.match(proc.stdout.splitlines()[-1])
    assert m and m["verdict"] == "up to date" and m["errors"] == "0", proc.stdout


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["compile"])
    assert info.value.code == 2
    assert "PATH" in capsys.readouterr().err
    # A status that does not exist is refused, not answered with no runs.
    with pytest.raises(SystemExit) as info:
        main(["runs", "list", "--store", "memory://", "--status", "done"])
    assert info.value.code == 2
    assert "invalid choice: 'done'" in capsys.readouterr().err


def test_source_with_unusual_encoding_is_read_like_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text = "# -*- coding: latin-1 -*-\n" + GOOD.replace("return x", "return x + 'é'")
    (tmp_path / "enc.py").write_bytes(text.encode("latin-1"))
    (tmp_path / "undecodable.py").write_bytes(b"import resumable\nx = '\xff'\n")
    status, lines = compile_here(capsys, "enc.py", "undecodable.py")
    assert status == 1
    assert "Traceback" not in "\n".join(lines)
    assert "'é'" in (tmp_path / "__resumable__" / "enc.py").read_text(encoding="utf-8")
    assert any(line.startswith("undecodable.py:") and "error[E00]" in line for line in lines), lines


def test_generated_header_names_the_source(tmp_path: Path) -> None:
    from resumable_compiler.build import compile_file

    path = write(tmp_path / "named.py", GOOD)
    result = compile_file(str(path))
    assert result.status == "written"
    head = Path(result.output).read_text().splitlines()[:3]
    assert head[0] == "# Generated by `resumable compile` from named.py. Do not edit: change"
    assert re.fullmatch(
        r"# resumable \S+, source sha256:[0-9a-f]{64}, compiler [0-9a-f]+, output sha256:[0-9a-f]{64}",
        head[2],
    ), head
