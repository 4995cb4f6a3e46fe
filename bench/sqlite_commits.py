"""What durability costs on SQLite FULL (the default store): a lone run, a
child run, and many runs at once, each against a floor measured in the
same round.

    python bench/sqlite_commits.py            # about two minutes
    python bench/sqlite_commits.py --quick    # a smoke check

Needs the compiler. On a fresh `sqlite:///...` store (WAL, synchronous=FULL:
an fsync per commit), times:

- floor: single-row commits, by hand with sqlite3 on a file of the same
  settings: each an autocommit UPDATE of one of 100 rows with a distinct
  ~300-byte blob (what a checkpoint writes);
- lone run: one run at a time of `steps` (20 awaits of a plain coroutine);
  its per-await cost (run - native run) / 20 against one floor commit: the
  efficiency floor / per-await, target at least 0.9; beside it, for the
  reading, a thread round trip (an event loop hands a call to a one-thread
  executor, which settles a future with call_soon_threadsafe): what an
  await pays on top of its commit because the commit runs off the loop;
- child run: one run at a time of `parent` (10 awaits of a decorated child
  that awaits nothing of its own) against `plain` (10 awaits of a plain
  coroutine); the ratio of their per-await costs, target at most 1.5;
- group commit: N runs of `steps` at once in one event loop (`asyncio.gather`
  of `rt.call`), N in 1, 10, 30, 100, 300; awaits per second against floor
  commits per second: at N = 100, target at least 10x.

Each figure is the median of the rounds' ratios; a round measures the floor
and the durable side back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from compiled import compiled_module
from report import Figure, Target, median_and_spread, write

import resumable

STEPS = 20
CHILDREN = 10

SOURCE = f"""
import resumable


async def work(x):
    return x + 1


@resumable.function
async def steps(user_id):
    order_id, amount, label, note = 456, 19.99, "order", None
    for i in range({STEPS}):
        amount = await work(amount)
    return (user_id, order_id, round(amount, 2), label, note)


@resumable.function
async def leaf(x):
    return x * 2


@resumable.function
async def parent(n):
    total = 0
    for i in range({CHILDREN}):
        total += await leaf(i)
    return total


@resumable.function
async def plain(n):
    total = 0
    for i in range({CHILDREN}):
        total += await work(i)
    return total
"""


def load(folder: Path) -> ModuleType:
    return compiled_module(folder, "bench_sqlite_commits", SOURCE)


def floor_commit_seconds(path: Path, commits: int) -> float:
    """Seconds per single-row commit (WAL, synchronous=FULL, autocommit)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, state BLOB)")
        conn.executemany("INSERT OR IGNORE INTO runs VALUES (?, ?)", [(i, b"") for i in range(100)])
        start = time.perf_counter()
        for n in range(commits):
            blob = os.urandom(150).hex().encode()  # ~300 bytes, distinct
            conn.execute("UPDATE runs SET state = ? WHERE id = ?", (blob, n % 100))
        return (time.perf_counter() - start) / commits
    finally:
        conn.close()


def round_trip_seconds(trips: int) -> float:
    """Seconds per hop of an event loop to a one-thread executor and back
    (submit, then call_soon_threadsafe to settle a future): what every await
    pays on a store that commits off the event loop, besides the commit."""
    executor = concurrent.futures.ThreadPoolExecutor(1)

    async def trips_of() -> float:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        for _ in range(trips):
            future = loop.create_future()
            executor.submit(loop.call_soon_threadsafe, future.set_result, None)
            await future
        return (time.perf_counter() - start) / trips

    try:
        return asyncio.run(trips_of())
    finally:
        executor.shutdown()


def native_seconds(fn: Any, arg: Any, runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        asyncio.run(fn(arg))
    return (time.perf_counter() - start) / runs


def run_seconds(rt: resumable.Runtime, fn: Any, arg: Any, runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        rt.run(fn, arg, run_id=uuid.uuid4().hex)
    return (time.perf_counter() - start) / runs


def at_once_seconds(rt: resumable.Runtime, fn: Any, n: int) -> float:
    """Seconds for n runs of fn at once in one event loop."""

    async def together() -> None:
        await asyncio.gather(*(rt.call(fn, f"u{i}", run_id=uuid.uuid4().hex) for i in range(n)))

    start = time.perf_counter()
    asyncio.run(together())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    repeat, runs, commits = (2, 3, 100) if args.quick else (args.repeat, 12, 400)
    at_once = [1, 10, 30, 100] if args.quick else [1, 10, 30, 100, 300]
    figure = Figure("sqlite_commits", setup="sqlite:/// WAL synchronous=FULL, one process")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mod = load(folder)
        url = f"sqlite:///{folder}/state.db"
        lone, child, floors, trips = [], [], [], []
        group: dict[int, list[float]] = {n: [] for n in at_once}
        with resumable.Runtime(url) as rt:
            assert rt.run(mod.steps, "u") == asyncio.run(mod.steps("u"))
            assert rt.run(mod.parent, 1) == asyncio.run(mod.parent(1))
            for _ in range(repeat):
                floor = floor_commit_seconds(folder / "floor.db", commits)
                floors.append(floor)
                trips.append(round_trip_seconds(commits))
                native = native_seconds(mod.steps, "u", runs)
                per_await = (run_seconds(rt, mod.steps, "u", runs) - native) / STEPS
                lone.append((floor / per_await, per_await, floor))
                plain_native = native_seconds(mod.plain, 1, runs)
                plain_await = (run_seconds(rt, mod.plain, 1, runs) - plain_native) / CHILDREN
                parent_native = native_seconds(mod.parent, 1, runs)
                child_await = (run_seconds(rt, mod.parent, 1, runs) - parent_native) / CHILDREN
                child.append((child_await / plain_await, child_await, plain_await))
                for n in at_once:
                    rate = n * STEPS / at_once_seconds(rt, mod.steps, n)
                    group[n].append(rate * floor)  # x the floor's commits per second
        floor, floor_spread = median_and_spread(floors)
        figure.row("floor: one single-row commit", floor * 1e6, "µs", floor_spread)
        trip, trip_spread = median_and_spread(trips)
        figure.row("thread round trip: loop -> store thread -> loop", trip * 1e6, "µs", trip_spread)
        ratio, spread = median_and_spread([r for r, _, _ in lone])
        per_await = median_and_spread([a for _, a, _ in lone])
        figure.row("lone run: per await", per_await[0] * 1e6, "µs", per_await[1])
        figure.targets.append(
            Target(
                "lone run on SQLite FULL: floor commit / per-await cost",
                ratio,
                0.9,
                "at least",
                f"per await {per_await[0] * 1e6:.0f} µs, floor commit {floor * 1e6:.0f} µs, "
                f"thread round trip {trip * 1e6:.0f} µs",
                spread,
            )
        )
        ratio, spread = median_and_spread([r for r, _, _ in child])
        child_await = median_and_spread([c for _, c, _ in child])
        plain_await = median_and_spread([p for _, _, p in child])
        figure.row("child-run await", child_await[0] * 1e6, "µs", child_await[1])
        figure.row("plain await (same loop)", plain_await[0] * 1e6, "µs", plain_await[1])
        figure.targets.append(
            Target(
                "child-run await / plain await, SQLite FULL",
                ratio,
                1.5,
                "at most",
                f"child {child_await[0] * 1e6:.0f} µs, plain {plain_await[0] * 1e6:.0f} µs",
                spread,
            )
        )
        xs, ys = [], []
        for n in at_once:
            times_floor, spread = median_and_spread(group[n])
            figure.row(f"{n} runs at once: awaits/s", times_floor / floor, "/s", spread)
            xs.append(n)
            ys.append(times_floor)
            if n == 100:
                figure.targets.append(
                    Target(
                        "group commit, 100 runs at once: awaits/s / floor commits/s",
                        times_floor,
                        10.0,
                        "at least",
                        f"{times_floor / floor:,.0f} awaits/s, floor {1 / floor:,.0f} commits/s",
                        spread,
                    )
                )
        figure.series["throughput"] = {
            "title": "Throughput against runs at once (SQLite FULL)",
            "xlabel": "runs at once in one process",
            "ylabel": "awaits per second / floor commits per second",
            "log_x": True,
            "lines": {"resumable": {"x": xs, "y": ys}},
        }
    for row in figure.rows:
        spread = f" ±{row['spread'] * 100:.0f}%" if row["spread"] else ""
        print(f"{row['what']:<40} {row['value']:>12,.1f} {row['unit']}{spread}")
    for t in figure.targets:
        print(f"{t.name}: {t.value:.2f} ({t.sense} {t.limit}) — {t.detail}")
    write(figure, args.json)


if __name__ == "__main__":
    main()
