"""`resumable runs show` as an operator reads it: values as Python reprs (no
raw tags, no user code imported), the compiled code's own variables left
out, a failed run's exception with the user's frames (not resumable's), a
long list of children paged, the await a run stands at as the code that
wrote its checkpoint saw it after a deploy, and blocked runs' messages that
say how they go on."""

from __future__ import annotations

import textwrap
from pathlib import Path

from resumable_compiler.build import compile_file
from tests.procs import clean_env, python, resumable_cmd

SHOP = """
import dataclasses

import resumable


@dataclasses.dataclass
class Item:
    sku: str
    qty: int


async def fetch(n):
    if n > 2:
        raise ValueError(f"bad item {n}")
    return n


@resumable.function(retry=resumable.Retry(max_attempts=1))
async def kid(n):
    return await fetch(n)


@resumable.function(retry=resumable.Retry(max_attempts=1))
async def order(items):
    total = 0
    tags = ("a", b"b")
    item = Item("x-1", 2)
    for i in items:
        total += await kid(i)
    return total, tags, item


@resumable.function
async def many(n):
    for i in range(n):
        await kid(0)
    return n
"""

RUN = """
import sys
import resumable, shop
rt = resumable.Runtime("sqlite:///s.db")
try:
    print(rt.run(getattr(shop, sys.argv[1]), eval(sys.argv[2]), run_id=sys.argv[3]))
except Exception as e:
    print(type(e).__name__, e)
"""


def setup(tmp_path: Path, source: str = SHOP) -> dict[str, str]:
    (tmp_path / "shop.py").write_text(textwrap.dedent(source))
    assert not compile_file(str(tmp_path / "shop.py")).errors
    return clean_env()


def run(tmp_path: Path, env: dict[str, str], fn: str, arg: str, run_id: str) -> str:
    done = python(RUN, fn, arg, run_id, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def show(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    shown = resumable_cmd("runs", "show", *args, "--store", "sqlite:///s.db", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def test_a_failed_run_shows_reprs_its_exception_and_the_users_frames(tmp_path: Path) -> None:
    env = setup(tmp_path)
    assert run(tmp_path, env, "order", "[1, 2, 3]", "o1") == "ValueError bad item 3\n"
    out = show(tmp_path, env, "o1")
    assert "  total = 3" in out
    assert "  tags = ('a', b'b')" in out  # a tuple and bytes, not {"$tuple": ...}
    assert "  item = Item(sku='x-1', qty=2)" in out  # without importing shop
    assert "_c1" not in out and "$" not in out
    assert "1 of the compiled code's own, not shown" in out
    assert "error     ValueError('bad item 3')" in out
    assert 'shop.py", line 15, in fetch' in out and 'raise ValueError(f"bad item {n}")' in out
    assert "driver.py" not in out and "lifecycle.py" not in out
    assert "children  3 (2 completed, 1 failed)" in out


def test_a_completed_runs_result_is_a_repr(tmp_path: Path) -> None:
    env = setup(tmp_path)
    run(tmp_path, env, "order", "[1, 2]", "ok")
    assert "result    (3, ('a', b'b'), Item(sku='x-1', qty=2))" in show(tmp_path, env, "ok")


def test_many_children_are_paged(tmp_path: Path) -> None:
    env = setup(tmp_path)
    run(tmp_path, env, "many", "25", "m")
    out = show(tmp_path, env, "m")
    assert "children  25 (25 completed)" in out
    assert out.count("  completed  shop:kid") == 20
    assert "... 5 more: --children N shows N, --children all shows every one" in out
    assert show(tmp_path, env, "m", "--children", "all").count("  completed  shop:kid") == 25
    assert show(tmp_path, env, "m", "--children", "3").count("  completed  shop:kid") == 3
    bad = resumable_cmd(
        "runs", "show", "m", "--children", "lots", "--store", "sqlite:///s.db", cwd=tmp_path,
        env=env,
    )  # fmt: skip
    assert bad.returncode == 2 and "--children takes a number or `all`" in bad.stderr


def test_after_a_deploy_the_await_is_shown_as_the_code_that_wrote_it_saw_it(
    tmp_path: Path,
) -> None:
    env = setup(tmp_path)
    run(tmp_path, env, "order", "[1, 2, 3]", "o1")
    assert "at        checkpoint #3, shop.py:30: total += await kid(i)" in show(tmp_path, env, "o1")
    # Lines added above, compiled again: the same await, at its new line.
    setup(
        tmp_path, SHOP.replace("    total = 0\n", "    # two lines\n    # added\n    total = 0\n")
    )
    assert "at        checkpoint #3, shop.py:32: total += await kid(i)" in show(tmp_path, env, "o1")
    # Edited but not compiled: the compiled code's line, and a warning.
    source = tmp_path / "shop.py"
    source.write_text(source.read_text().replace("# added\n", "# added\n    # more\n"))
    out = show(tmp_path, env, "o1")
    assert "shop.py:32: total += await kid(i) (the source file has changed since" in out
    # The code up to the await changed (a deploy): said, with what the line holds now.
    setup(tmp_path, SHOP.replace("total += await kid(i)", "total += 2 * await kid(i)"))
    out = show(tmp_path, env, "o1")
    assert "shop.py:30 of the code that wrote the checkpoint; the code up to that await" in out
    assert "line 30 now reads: total += 2 * await kid(i)" in out


def test_a_version_mismatch_names_changed_parameters_and_how_the_run_goes_on(
    tmp_path: Path,
) -> None:
    env = setup(tmp_path)
    run(tmp_path, env, "order", "[1, 2, 3]", "o1")
    setup(tmp_path, SHOP.replace("async def order(items):", "async def order(items, extra=0):"))
    retried = resumable_cmd(
        "runs", "retry", "o1", "--store", "sqlite:///s.db", cwd=tmp_path, env=env
    )
    assert retried.returncode == 0, retried.stderr
    out = run(tmp_path, env, "order", "[1, 2, 3]", "o1")
    assert out.startswith("VersionMismatch")
    assert "stays blocked until `resumable runs retry o1`" in out
    assert "started with (items), the function now takes (items, extra)" in out
    again = run(tmp_path, env, "order", "[1, 2, 3]", "o1")  # raised again, still blocked
    assert again.startswith("VersionMismatch")
    assert "status    blocked (VersionMismatch" in show(tmp_path, env, "o1")


def test_stale_code_says_how_a_blocked_run_goes_on(tmp_path: Path) -> None:
    env = setup(tmp_path)
    (tmp_path / "__resumable__" / "shop.py").unlink()
    out = run(tmp_path, env, "order", "[1]", "s1")
    assert out.startswith("StaleCodeError") and "resumable compile shop.py" in out
    assert "stays blocked until `resumable runs retry RUN`" in out
