"""Resuming persisted runs under changed code (versioning).

A run resumes under changed code only when nothing before its current await
and none of its live variables changed; otherwise it is blocked with a
VersionMismatch that names the function and what changed. Each test starts a
run on a SQLite file, "crashes" it in-process right after checkpoint k (a
BaseException from the checkpoint observer, as a killed process would leave
it), deploys edited code (write, compile, import under a fresh module name)
and resumes it with a fresh Runtime on the same file.

Also: a blocked run is not picked up by `resumable worker --drain`, `retry`
after deploying the original code resumes it, and a run blocked by a value
that cannot be checkpointed stays at its last good checkpoint until a fix is
deployed and it is retried."""

from __future__ import annotations

import asyncio
import linecache
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

from resumable import CheckpointInfo, Runtime, SerializationError, VersionMismatch
from resumable.store import RunRecord
from resumable.worker import work
from tests.compiled import compile_and_import

FLOW = '''\
"""Versioning test module (edited by the tests)."""

import threading

import resumable

steps = []
HELD = []


async def tick(label, value=None):
    steps.append(label)
    return value


@resumable.function
async def flow(a):
    b = a + 1
    x = await tick("one", b * 10)
    y = await tick("two", x + a)
    z = await tick("three", y - 1)
    return [a, x, y, z]


@resumable.function
async def hold_file(path):
    n = await tick("first", 1)
    f = open(path)
    HELD.append(f)
    await tick("second")
    return n + len(f.read())


@resumable.function
async def hold_lock(n):
    m = await tick("first", n)
    lock = threading.Lock()
    await tick("second")
    with lock:
        return m * 2
'''


class Crash(BaseException):
    """Stands for the process dying right after a checkpoint was committed."""


def crash_at(k: int) -> Callable[[CheckpointInfo], None]:
    def observer(info: CheckpointInfo) -> None:
        if info.seq == k:
            raise Crash

    return observer


class Deployment:
    """The module `vmod.py` in a temporary folder: each `deploy(text)` writes,
    compiles and imports it under a fresh module name, as a new deployment
    (a new process) would. The function ids stay `vmod:<name>`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "vmod.py"
        self.url = f"sqlite:///{folder / 'state.db'}"
        self.names: list[str] = []

    def deploy(self, text: str) -> ModuleType:
        linecache.checkcache()  # a new process has no cached lines of the old text
        self.names.append(f"versioning_{uuid.uuid4().hex}")
        return compile_and_import(self.path, self.names[-1], text)

    def runtime(self, on_checkpoint: Callable[[CheckpointInfo], None] | None = None) -> Runtime:
        return Runtime(self.url, on_checkpoint=on_checkpoint)

    def crashed_run(self, module: ModuleType, name: str, k: int, *args: Any, run_id: str) -> None:
        """Start a run of `module.<name>` that stops right after checkpoint k."""
        with self.runtime(crash_at(k)) as rt, pytest.raises(Crash):
            rt.run(getattr(module, name), *args, run_id=run_id)
        with self.runtime() as rt:
            record = rt.get(run_id)
        assert (record.status, record.seq) == ("running", k)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path)
    yield d
    for name in d.names:
        sys.modules.pop(name, None)
    linecache.checkcache()


def same_place(before: RunRecord, after: RunRecord) -> None:
    """`after` is still at exactly the checkpoint of `before`."""
    assert after.seq == before.seq
    assert after.checkpoint == before.checkpoint
    assert after.line == before.line


def line_of(path: Path, snippet: str) -> int:
    """The line of `path` that contains `snippet` (exactly one)."""
    hits = [n for n, text in enumerate(path.read_text().splitlines(), 1) if snippet in text]
    assert len(hits) == 1, (snippet, hits)
    return hits[0]


def oracle(module: ModuleType, name: str, *args: Any) -> Any:
    """What the function returns, run natively (plain asyncio)."""
    return asyncio.run(getattr(module, name).__wrapped__(*args))


# ----------------------------------------------------------------- compatible changes


@pytest.mark.parametrize(
    ("k", "edit", "effects"),
    [
        pytest.param(
            2,
            lambda t: t.replace("return [a, x, y, z]", "return [a, x, y, z, 'new']").replace(
                'tick("three", y - 1)', 'tick("three", y * 100)'
            ),
            ["two", "three"],
            id="code-after-the-await",
        ),
        pytest.param(
            1,
            lambda t: t.replace(
                "    return [a, x, y, z]\n",
                "    w = await tick('four', z + 1)\n    return [a, x, y, z, w]\n",
            ),
            ["one", "two", "three", "four"],
            id="await-added-after",
        ),
        pytest.param(
            3,
            lambda t: (
                t.replace('"""Versioning test module', '# moved\n\n\n"""Versioning test module')
                .replace("    b = a + 1\n", "    b = (a +\n         1)  # reformatted\n")
                .replace("return [a, x, y, z]", "return [a, x, y, z + 1000]")
            ),
            ["three"],
            id="reformatted-and-moved",
        ),
    ],
)
def test_resumes_under_code_changed_only_after_its_await(
    deployment: Deployment, k: int, edit: Callable[[str], str], effects: list[str]
) -> None:
    old = deployment.deploy(FLOW)
    deployment.crashed_run(old, "flow", k, 4, run_id="r")
    assert old.steps == ["one", "two", "three"][: k - 1]
    text = edit(FLOW)
    assert text != FLOW
    new = deployment.deploy(text)
    expected = oracle(new, "flow", 4)
    assert expected != oracle(old, "flow", 4)  # the edit changes the result
    new.steps.clear()
    with deployment.runtime() as rt:
        assert rt.run(new.flow, run_id="r") == expected
        # It went on from its checkpoint: the steps before it did not run again.
        assert new.steps == effects
        record = rt.get("r")
        assert record.status == "completed"
        assert record.fingerprint == new.flow.machine().run_fingerprint
        assert record.fingerprint != old.flow.machine().run_fingerprint


# ----------------------------------------------------------------- incompatible changes


@pytest.mark.parametrize(
    ("k", "edit", "what", "at"),
    [
        pytest.param(
            2,
            lambda t: t.replace("b = a + 1", "b = a + 2"),
            "the code before the await on line {line}, or that await, changed",
            'tick("two"',
            id="code-before-the-await",
        ),
        pytest.param(
            2,
            lambda t: t.replace('tick("two", x + a)', 'tick("two", x - a)'),
            "the code before the await on line {line}, or that await, changed",
            'tick("two"',
            id="the-await-itself",
        ),
        pytest.param(
            2,
            lambda t: t.replace("return [a, x, y, z]", "return [a, b, x, y, z]"),
            "the variables live at the await on line {line} changed "
            "(now: a, b, x; the checkpoint holds: a, x)",
            'tick("two"',
            id="live-variables-added",
        ),
        pytest.param(
            3,
            lambda t: t.replace("return [a, x, y, z]", "return [x, y, z]"),
            "the variables live at the await on line {line} changed "
            "(now: x, y; the checkpoint holds: a, x, y)",
            'tick("three"',
            id="live-variables-removed",
        ),
        pytest.param(
            3,
            lambda t: t.replace('z = await tick("three", y - 1)', "z = y - 1"),
            "the await it stands at (await number 2) no longer exists",
            None,
            id="await-removed",
        ),
        pytest.param(
            2,
            lambda t: t.replace('x = await tick("one", b * 10)', "x = b * 10"),
            # The run's await (the 2nd) is now the one that was the 3rd.
            "the code before the await on line {line}, or that await, changed",
            'tick("three"',
            id="earlier-await-removed",
        ),
    ],
)
def test_incompatible_change_blocks_the_run_with_a_version_mismatch(
    deployment: Deployment, k: int, edit: Callable[[str], str], what: str, at: str | None
) -> None:
    old = deployment.deploy(FLOW)
    deployment.crashed_run(old, "flow", k, 4, run_id="r")
    with deployment.runtime() as rt:
        before = rt.get("r")
    new = deployment.deploy(edit(FLOW))
    new.steps.clear()
    with deployment.runtime() as rt:
        with pytest.raises(VersionMismatch) as info:
            rt.run(new.flow, run_id="r")
        message = str(info.value)
        after = rt.get("r")
    # It names the function, its file, the run and what changed.
    assert message.startswith("flow (")
    assert "vmod.py" in message and "run 'r'" in message
    if at is not None:
        what = what.format(line=line_of(deployment.path, at))
    assert what in message
    # Nothing ran, and the run is blocked at its checkpoint with the reason.
    assert new.steps == []
    assert after.status == "blocked"
    assert after.reason is not None
    assert after.reason.startswith("VersionMismatch: flow (")
    same_place(before, after)
    with deployment.runtime() as rt, pytest.raises(VersionMismatch):
        rt.result("r")  # the stored outcome is the mismatch


def test_blocked_run_is_left_alone_by_the_worker_and_retry_resumes_it(
    deployment: Deployment,
) -> None:
    old = deployment.deploy(FLOW)
    expected = oracle(old, "flow", 7)
    deployment.crashed_run(old, "flow", 2, 7, run_id="blocked")
    changed = deployment.deploy(FLOW.replace("b = a + 1", "b = a + 2"))
    with deployment.runtime() as rt:
        with pytest.raises(VersionMismatch):
            rt.run(changed.flow, run_id="blocked")
        before = rt.get("blocked")
        assert before.status == "blocked"
        # Something the worker can do: a new run of the deployed code.
        rt.dispatch(changed.flow, 2, run_id="fresh")
    worker = subprocess.run(
        [
            sys.executable,
            "-m",
            "resumable.cli",
            "worker",
            "--store",
            deployment.url,
            "--module",
            str(deployment.path),
            "--drain",
            "--poll",
            "0.05",
        ],
        cwd=deployment.folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr
    assert "run fresh: completed" in worker.stdout
    assert "run blocked:" not in worker.stdout
    assert (
        "1 completed, 0 failed or blocked, 0 cancelled, 0 waiting, 0 left to resume"
        in worker.stdout
    )
    with deployment.runtime() as rt:
        assert rt.result("fresh") == oracle(changed, "flow", 2)
        after = rt.get("blocked")
        assert after.status == "blocked"
        assert after.updated_at == before.updated_at  # not touched at all
        same_place(before, after)

        # Deploying the changed code again changes nothing: retry blocks it again.
        with pytest.raises(VersionMismatch):
            rt.retry("blocked")
        assert rt.status("blocked") == "blocked"
        same_place(before, rt.get("blocked"))

    # The original code again: retry resumes it from its checkpoint.
    original = deployment.deploy(FLOW)
    original.steps.clear()
    with deployment.runtime() as rt:
        assert rt.retry("blocked") == expected
        assert original.steps == ["two", "three"]
        record = rt.get("blocked")
        assert (record.status, record.seq, record.reason, record.error) == (
            "completed",
            3,
            None,
            None,
        )
        assert rt.result("blocked") == expected


def test_retry_without_waiting_leaves_the_run_to_a_worker(deployment: Deployment) -> None:
    old = deployment.deploy(FLOW)
    deployment.crashed_run(old, "flow", 3, 1, run_id="r")
    changed = deployment.deploy(FLOW.replace('z = await tick("three", y - 1)', "z = y - 1"))
    with deployment.runtime() as rt, pytest.raises(VersionMismatch, match="no longer exists"):
        rt.run(changed.flow, run_id="r")
    original = deployment.deploy(FLOW)
    with deployment.runtime() as rt:
        assert rt.retry("r", wait=False) is None
        record = rt.get("r")
        assert (record.status, record.reason, record.seq) == ("pending", None, 3)
        # A worker (here: in-process) resumes it.
        report = asyncio.run(work(rt, drain=True, log=lambda _: None))
        assert report.completed == 1
        assert rt.result("r") == oracle(original, "flow", 1)


# ----------------------------------------------------------------- unencodable values


FIXES = {
    "hold_file": (
        """    f = open(path)
    HELD.append(f)
    await tick("second")
    return n + len(f.read())
""",
        """    f = open(path)
    text = f.read()
    f.close()
    await tick("second")
    return n + len(text)
""",
    ),
    "hold_lock": (
        """    lock = threading.Lock()
    await tick("second")
    with lock:
""",
        """    await tick("second")
    lock = threading.Lock()
    with lock:
""",
    ),
}


@pytest.mark.parametrize(
    ("name", "variable", "kind"),
    [("hold_file", "f", "TextIOWrapper"), ("hold_lock", "lock", "lock")],
)
def test_unencodable_value_blocks_at_the_last_good_checkpoint_until_fixed(
    deployment: Deployment, name: str, variable: str, kind: str
) -> None:
    data = deployment.folder / "data.txt"
    data.write_text("twelve bytes")
    arg: Any = str(data) if name == "hold_file" else 21
    module = deployment.deploy(FLOW)
    good: list[RunRecord] = []
    with deployment.runtime() as rt:
        rt.on_checkpoint = lambda info: good.append(rt.get(info.run_id))
        try:
            with pytest.raises(SerializationError) as info:
                rt.run(getattr(module, name), arg, run_id="held")
        finally:
            for f in module.HELD:
                f.close()
        message = str(info.value)
        record = rt.get("held")
    assert [r.seq for r in good] == [1]
    assert f"`{variable}`" in message and name in message and kind in message
    assert module.steps == ["first"]  # the step that could not be saved never ran
    assert record.status == "blocked"
    assert record.reason is not None
    assert record.reason.startswith(f"SerializationError: cannot checkpoint {name} ")
    assert f"`{variable}`" in record.reason
    same_place(good[0], record)  # seq 1, the same checkpoint bytes
    with deployment.runtime() as rt, pytest.raises(SerializationError):
        rt.result("held")

    held, fixed = FIXES[name]
    assert held in FLOW
    fixed_module = deployment.deploy(FLOW.replace(held, fixed))
    expected = oracle(fixed_module, name, arg)
    fixed_module.steps.clear()
    with deployment.runtime() as rt:
        assert rt.retry("held") == expected
        # From checkpoint 1, taken before the first await's operand: that step
        # runs again (its outcome was never saved), then the fixed code goes on.
        assert fixed_module.steps == ["first", "second"]
        done = rt.get("held")
    assert (done.status, done.seq, done.reason) == ("completed", 2, None)


# ------------------------------------------------------------ a new lowering version


def test_a_checkpoint_of_another_lowering_version_is_blocked_naming_it(
    deployment: Deployment,
) -> None:
    old = deployment.deploy(FLOW)
    deployment.crashed_run(old, "flow", 2, 4, run_id="r")
    with deployment.runtime() as rt:
        before = rt.get("r")
    new = deployment.deploy(FLOW)
    new.steps.clear()
    # The same source compiled by a compiler that lays states out another way.
    new.flow.machine().lowering_version = 2
    with deployment.runtime() as rt:
        with pytest.raises(VersionMismatch) as info:
            rt.run(new.flow, run_id="r")
        after = rt.get("r")
    message = str(info.value)
    assert "laid out with lowering version 1" in message
    assert "compiled with lowering version 2" in message
    assert new.steps == []
    assert after.status == "blocked"
    same_place(before, after)


def test_the_lowering_version_is_written_into_generated_code_and_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resumable_compiler.render as render
    from resumable import codec
    from resumable_compiler.build import compile_source

    path = tmp_path / "lv.py"
    text, _, errors = compile_source(str(path), FLOW)
    assert not errors and text is not None and "lowering_version" not in text  # 1: not written
    monkeypatch.setattr(render, "LOWERING_VERSION", 7)
    text, _, errors = compile_source(str(path), FLOW)
    assert not errors and text is not None and "    lowering_version = 7\n" in text

    class Seven:
        function_id, lowering_version, run_fingerprint = "m:f", 7, "x"
        sites: ClassVar[dict[int, tuple[int, str]]] = {3: (0, "a.b")}

    assert codec._checkpoint_meta(Seven, 3, 1)["lv"] == 7
