"""What a sleeping run costs a worker: its memory with 10,000 runs it drove
into `resumable.sleep`, against the same worker idle.

    python bench/sleep_memory.py                 # 10,000 runs (a few minutes on 2 cores)
    python bench/sleep_memory.py --runs 1000     # quicker

In a temporary folder: a module whose function sleeps until a wake time
given as its argument, compiled; a worker (`resumable worker`, a real
subprocess, --concurrency 64) started on an empty SQLite store; its RSS
(VmRSS) once it is idle; then the runs are dispatched, the worker drives each
into its sleep, and its RSS is read again once every run is waiting; then the
wake time passes, and the script checks that every run wakes and completes.
The target (docs/performance.md): at most 50 MB more than idle.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

MODULE = """
import resumable


@resumable.function
async def sleeper(i, wake_at):
    await resumable.sleep_until(wake_at)
    return i
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def counts(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


def wait_for(what: str, condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--wake-after", type=float, default=60.0, help="seconds, plus 20 ms a run")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sleep_memory_"))
    (folder / "sleepers.py").write_text(textwrap.dedent(MODULE))
    db = folder / "state.db"
    env = {**os.environ, "RESUMABLE_STORE": f"sqlite:///{db}"}
    run = [sys.executable, "-m", "resumable"]
    subprocess.run([*run, "compile", "sleepers.py"], cwd=folder, env=env, check=True)
    worker = subprocess.Popen(
        [*run, "worker", "--module", "sleepers", "--concurrency", str(args.concurrency)],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(3)
        idle = rss_mb(worker.pid)
        started = time.monotonic()
        # The wake time: far enough for the worker to drive every run into its sleep.
        wake_at = time.time() + args.wake_after + args.runs * 0.02
        code = (
            "import datetime, sleepers\n"
            f"when = datetime.datetime.fromtimestamp({wake_at!r}, datetime.UTC)\n"
            f"for i in range({args.runs}): sleepers.sleeper.dispatch(i, when, run_id=f'r{{i}}')\n"
        )
        subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, check=True)
        wait_for(
            "every run sleeping",
            lambda: counts(db).get("waiting", 0) == args.runs,
            timeout=wake_at - time.time() - 1,
        )
        driven = time.monotonic() - started
        time.sleep(2)
        sleeping = rss_mb(worker.pid)
        wait_for(
            "every run completed",
            lambda: counts(db).get("completed", 0) == args.runs,
            timeout=wake_at - time.time() + 600,
        )
        late = time.time() - wake_at
        after = rss_mb(worker.pid)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    print(f"runs: {args.runs}, worker concurrency {args.concurrency}")
    print(
        f"driven into their sleep in {driven:.1f} s; all completed {late:.1f} s after the wake time"
    )
    print(f"worker RSS idle:                 {idle:8.1f} MB")
    print(
        f"worker RSS, {args.runs} runs sleeping: {sleeping:8.1f} MB "
        f"(+{sleeping - idle:.1f} MB, {sleeping / idle:.2f}x idle)"
    )
    print(f"worker RSS, all completed:       {after:8.1f} MB ({after / idle:.2f}x idle)")
    return 0 if sleeping - idle <= 50 else 1


if __name__ == "__main__":
    sys.exit(main())
