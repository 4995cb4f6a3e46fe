"""Resume cost against history: a run resumed after 10,000 completed awaits
against one resumed after 10.

    python bench/resume.py            # about half a minute
    python bench/resume.py --quick    # a smoke check

Needs the compiler. A function awaits a plain coroutine n times in a loop;
each run is stopped at its last checkpoint (an `on_checkpoint` observer
raises a BaseException there, which reaches `rt.run` and leaves the run
resumable), then a fresh Runtime on the same SQLite file resumes it: the
time of that `rt.run`, from the last checkpoint to the end, is the resume
cost. A checkpoint replaces the one before it, so the cost should not grow
with n. The store is `sqlite:///...?synchronous=OFF` (what is measured is
the reading and decoding, not the fsync of the one commit a resume makes).
Target: resume after 10,000 at most 1.2x resume after 10 (the median of
the rounds' ratios).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import contextlib

from compiled import compiled_module
from report import Figure, Target, median_and_spread, write

import resumable

SOURCE = """
import resumable


async def work(x):
    return x + 1


@resumable.function
async def long(n):
    total, label = 0, "order"
    for i in range(n):
        total = await work(total)
    return (total, label)
"""


class Stop(BaseException):
    """Raised at the last checkpoint: the run stays there, resumable."""


def load(folder: Path) -> ModuleType:
    return compiled_module(folder, "bench_resume", SOURCE)


def stopped_run(url: str, fn: Any, n: int) -> str:
    """A run of fn(n) left at its last checkpoint (n)."""

    def observer(info: Any) -> None:
        if info.seq == n:
            raise Stop

    run_id = uuid.uuid4().hex
    with resumable.Runtime(url, on_checkpoint=observer) as rt:
        with contextlib.suppress(Stop):
            rt.run(fn, n, run_id=run_id)
        assert rt.get(run_id).seq == n
    return run_id


def resume_seconds(url: str, fn: Any, run_id: str, n: int) -> float:
    with resumable.Runtime(url) as rt:
        start = time.perf_counter()
        value = rt.run(fn, n, run_id=run_id)
        took = time.perf_counter() - start
    assert value == (n, "order"), value
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    long, short = (2_000, 10) if args.quick else (10_000, 10)
    rounds, per_round = (2, 3) if args.quick else (5, 5)
    figure = Figure("resume", setup="sqlite:/// synchronous=OFF, fresh Runtime per resume")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mod = load(folder)
        url = f"sqlite:///{folder}/state.db?synchronous=OFF"
        ratios, long_times, short_times = [], [], []
        for _ in range(rounds):
            ids = {
                n: [stopped_run(url, mod.long, n) for _ in range(per_round)] for n in (long, short)
            }
            t_long = statistics.median(resume_seconds(url, mod.long, r, long) for r in ids[long])
            t_short = statistics.median(resume_seconds(url, mod.long, r, short) for r in ids[short])
            ratios.append(t_long / t_short)
            long_times.append(t_long)
            short_times.append(t_short)
    ratio, spread = median_and_spread(ratios)
    t_long, long_spread = median_and_spread(long_times)
    t_short, short_spread = median_and_spread(short_times)
    figure.row(f"resume after {short:,} awaits", t_short * 1e3, "ms", short_spread)
    figure.row(f"resume after {long:,} awaits", t_long * 1e3, "ms", long_spread)
    figure.targets.append(
        Target(
            f"resume after {long:,} awaits / after {short}",
            ratio,
            1.2,
            "at most",
            f"{t_long * 1e3:.2f} ms / {t_short * 1e3:.2f} ms",
            spread,
        )
    )
    print(f"resume after {short}: {t_short * 1e3:.2f} ms; after {long:,}: {t_long * 1e3:.2f} ms")
    print(f"ratio {ratio:.2f} (at most 1.2)")
    write(figure, args.json)


if __name__ == "__main__":
    main()
