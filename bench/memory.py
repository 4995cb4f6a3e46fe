"""What a sleeping run costs a worker: its memory with 10,000 runs it drove
into `resumable.sleep`, against the same worker idle.

    python bench/memory.py                  # 10,000 runs (about 2 minutes on 2 cores)
    python bench/memory.py --quick          # 500 runs: a smoke check
    python bench/memory.py --json out.json  # the Figure for bench/all.py

In a temporary folder: a module whose function sleeps until a wake time
given as its argument, compiled; a worker (`resumable worker`, a real
subprocess, --concurrency 64) started on an empty SQLite store; its RSS
(VmRSS) once it is idle; then the runs are dispatched, the worker drives each
into its sleep, and its RSS is read again once every run is waiting; then the
wake time passes, and the script checks that every run wakes and completes,
and reads its RSS again and its peak RSS (VmHWM: the most it ever held,
driving included). The target (docs/performance.md): with every run
sleeping, at most 50 MB more than idle (the same process, the same run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from report import Figure, Target, write

LIMIT_MB = 50.0

MODULE = """
import resumable


@resumable.function
async def sleeper(i, wake_at):
    await resumable.sleep_until(wake_at)
    return i
"""


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """VmRSS (now) or VmHWM (the peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


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
    parser.add_argument("--quick", action="store_true", help="500 runs: a smoke check")
    parser.add_argument("--json", help="write the Figure here")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--wake-after", type=float, default=15.0, help="seconds, plus 6 ms a run")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.wake_after = 500, 5.0
    folder = Path(tempfile.mkdtemp(prefix="bench_memory_"))
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
        wake_at = time.time() + args.wake_after + args.runs * 0.006
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
        peak = rss_mb(worker.pid, "VmHWM")
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
    print(f"worker peak RSS (VmHWM):         {peak:8.1f} MB ({peak / idle:.2f}x idle)")
    figure = Figure("memory")
    figure.row("worker RSS, idle", idle, "MB")
    figure.row(f"worker RSS, {args.runs:,} runs sleeping", sleeping, "MB")
    figure.row(f"worker RSS, all {args.runs:,} woken and completed", after, "MB")
    figure.row("worker peak RSS (VmHWM), driving included", peak, "MB")
    figure.row(f"seconds to drive {args.runs:,} runs into their sleep", driven, "s")
    figure.targets.append(
        Target(
            f"worker RSS with {args.runs:,} runs sleeping, over idle (MB)",
            sleeping - idle, LIMIT_MB, "at most",
            detail=f"{sleeping:.1f} MB sleeping - {idle:.1f} MB idle (peak {peak:.1f} MB)",
        )
    )  # fmt: skip
    figure.setup = f"{args.runs:,} runs, one worker --concurrency {args.concurrency}, SQLite file"
    write(figure, args.json)
    shutil.rmtree(folder, ignore_errors=True)
    # With --json, bench/all.py judges the target; a failing exit means a failed script.
    return 0 if args.json or sleeping - idle <= LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
