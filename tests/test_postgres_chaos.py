"""Three real worker processes on PostgreSQL drive 1,000 runs of 10 awaits
each (half of them child runs); one worker is SIGKILLed midway and another
frozen with SIGSTOP past its lease, then let go.

- Every run completes with the result of an uninterrupted run.
- No step runs again once its next checkpoint committed: a step's side
  effect appears twice only when the first copy came from the killed or
  the frozen worker (the step they had in flight), and a completed child's
  body never runs twice except so.
- The frozen worker, let go, commits nothing for the runs it lost: the
  runs it had are finished by the others, and it never writes an effect of
  a later step of those runs.
- The frozen worker's runs are taken over within the lease plus a poll.
"""

from __future__ import annotations

import collections
import os
import signal
import time
from pathlib import Path

from resumable.store import open_store
from tests.procs import clean_env, compile_module, python, start_worker, stop, wait_until

RUNS = 1000
LEASE = 2.0

JOBS = """
import os
import time

import resumable


def effect(label):
    fd = os.open(os.environ["EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{label} {os.getpid()} {time.time()}\\n".encode())
    finally:
        os.close(fd)


async def step(i, k):
    effect(f"{i}:{k}")
    return i + k


@resumable.function
async def child(i, k):
    effect(f"{i}:{k}:child")
    return i * k


@resumable.function
async def job(i):
    total = 0
    for k in range(10):
        if k % 2:
            total += await child(i, k)
        else:
            total += await step(i, k)
    return total
"""


def expected(i: int) -> int:  # what an uninterrupted run returns
    return sum(i * k if k % 2 else i + k for k in range(10))


def test_three_workers_survive_a_kill_and_a_stall(tmp_path: Path, postgres_url: str) -> None:
    compile_module(tmp_path, "chaos_jobs", JOBS)
    log = tmp_path / "effects.log"
    url = f"{postgres_url}&lease={LEASE:g}" if "?" in postgres_url else f"{postgres_url}?lease=2"
    env = clean_env(RESUMABLE_STORE=url, EFFECTS=str(log))
    made = python(
        "import resumable, chaos_jobs\nrt = resumable.Runtime()\n"
        f"for i in range({RUNS}): rt.dispatch(chaos_jobs.job, i, run_id=f'j{{i}}')\nrt.close()",
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    args = ("--module", "chaos_jobs", "--concurrency", "8", "--poll", "0.1")
    workers = [start_worker(*args, cwd=tmp_path, env=env) for _ in range(3)]
    killed, frozen, steady = workers
    store = open_store(url)
    try:
        wait_until(lambda: _effects(log) > 1500, "the work well under way", timeout=120)
        killed.send_signal(signal.SIGKILL)
        os.kill(frozen.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        held = _owned_by(store, frozen.pid)
        assert held, "the frozen worker drove no run when it was frozen"
        # Its runs are taken over once its leases end (plus a poll).
        wait_until(
            lambda: all(_owner(store, r) != frozen.pid for r in held),
            "the frozen worker's runs taken over",
            timeout=60,
        )
        takeover = time.monotonic() - stopped_at
        time.sleep(1.0)
        let_go = time.time()
        os.kill(frozen.pid, signal.SIGCONT)
        wait_until(
            lambda: _completed(store) == RUNS, "every run completed", timeout=180, proc=steady
        )
        for i in range(RUNS):
            record = store.get(f"j{i}")
            assert record is not None and record.status == "completed", i
            assert record.result is not None
    finally:
        for w in workers:
            if w.poll() is None:
                os.kill(w.pid, signal.SIGCONT)
        outputs = [stop(w) for w in workers]
        store.close()
    import resumable

    with resumable.Runtime(url) as rt:
        assert [rt.result(f"j{i}") for i in range(RUNS)] == [expected(i) for i in range(RUNS)]
    assert takeover <= LEASE + 0.1 + 3.0, takeover  # the lease, a poll, a slow machine
    bad = {killed.pid, frozen.pid}
    by_label: dict[str, list[tuple[int, float]]] = collections.defaultdict(list)
    for label, pid, at in (line.split() for line in log.read_text().splitlines()):
        by_label[label].append((int(pid), float(at)))
    assert set(by_label) == {
        f"{i}:{k}" + (":child" if k % 2 else "") for i in range(RUNS) for k in range(10)
    }
    for label, copies in by_label.items():
        # Run again only because a copy's worker was killed or frozen with
        # that step in flight: at most one copy from a healthy worker.
        assert sum(pid not in bad for pid, _ in copies) <= 1, (label, copies, outputs)
    # Let go, the frozen worker ran at most the one step it had in flight of
    # each run it lost, and committed nothing for them (they completed
    # under other owners, each step's effect as checked above).
    for run_id in held:
        i = run_id[1:]
        later = [
            label
            for label, copies in by_label.items()
            if label.split(":")[0] == i and any(p == frozen.pid and t > let_go for p, t in copies)
        ]
        assert len(later) <= 1, (run_id, later)


def _effects(log: Path) -> int:
    if not log.exists():
        return 0
    return log.read_bytes().count(b"\n")


def _completed(store: object) -> int:
    return len(store.list_runs(statuses=("completed",), top_only=True))  # type: ignore[attr-defined]


def _owned_by(store: object, pid: int) -> list[str]:
    rows = store.list_runs(statuses=("running",), top_only=True)  # type: ignore[attr-defined]
    return [r.run_id for r in rows if r.owner and r.owner.startswith(f"{pid}@")]


def _owner(store: object, run_id: str) -> int | None:
    record = store.get(run_id)  # type: ignore[attr-defined]
    if record is None or record.owner is None or record.status != "running":
        return None
    return int(record.owner.split("@", 1)[0])
