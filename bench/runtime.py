"""Durable run benchmark: what an await costs end to end, per store.

    python bench/runtime.py            # about a minute
    python bench/runtime.py --quick    # a smoke check

Needs the compiler (`pip install -e '.[compiler]'`). Writes a module with
three functions to a temporary folder, compiles it, and times whole runs:

- `steps`: 20 awaits of a plain coroutine, five small locals live;
- `children`: 10 awaits of a decorated function (10 child runs, each with
  one await of its own);
- the same `steps` run 50 at a time in one event loop (`asyncio.gather` of
  `rt.call`), to show that commits on the store thread overlap with the
  runs' own work.

on `memory://`, `sqlite:///...?synchronous=NORMAL` and the default
`sqlite:///...` (`synchronous=FULL`: an fsync per commit), against the
original coroutine under asyncio (native). Each figure is the median of
`--repeat` rounds; a round times `--runs` runs, each with a fresh run id.
The per-await figure is (run time - native run time) / awaits.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from compiled import compiled_module

import resumable

SOURCE = """
import asyncio

import resumable


async def work(x):
    return x + 1


@resumable.function
async def steps(user_id):
    order_id, amount, items, receipt = 456, 19.99, ["a", "b"], None
    for i in range(20):
        amount = await work(amount)
    return (user_id, order_id, round(amount, 2), items, receipt)


@resumable.function
async def leaf(x):
    y = await work(x)
    return y


@resumable.function
async def children(n):
    total = 0
    for i in range(10):
        total += await leaf(i)
    return total
"""

AWAITS = {"steps": 20, "children": 20}  # children: 10 of its own + 1 in each child


def load(folder: Path) -> ModuleType:
    return compiled_module(folder, "bench_runs", SOURCE)


def median_seconds(runs: int, repeat: int, action: Callable[..., Any], *args: Any) -> float:
    """Median over `repeat` rounds of the time per run (a round = `runs`
    calls of `action(*args)`)."""
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(runs):
            action(*args)
        rounds.append((time.perf_counter() - start) / runs)
    return statistics.median(rounds)


def run_native(fn: Any, arg: Any) -> None:
    asyncio.run(fn(arg))


def run_fifty(rt: resumable.Runtime, fn: Any) -> None:
    async def fifty() -> None:
        await asyncio.gather(*(rt.call(fn, f"u{i}") for i in range(50)))

    asyncio.run(fifty())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and rounds")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    runs, repeat = (8, 3) if args.quick else (args.runs, args.repeat)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mod = load(folder)
        stores = {
            "memory://": "memory://",
            "sqlite, synchronous=NORMAL": f"sqlite:///{folder}/normal.db?synchronous=NORMAL",
            "sqlite, synchronous=FULL (default)": f"sqlite:///{folder}/full.db",
        }
        print(f"Python {platform.python_version()}, resumable {resumable.__version__}")
        print(f"{runs} runs per round, median of {repeat} rounds\n")
        print(f"| {'function':<26} | {'store':<34} | {'ms per run':>10} | {'µs per await':>12} |")
        print(f"|{'-' * 28}|{'-' * 36}|{'-' * 12}:|{'-' * 14}:|")
        for name, arg in (("steps", "u_123"), ("children", 3)):
            fn = getattr(mod, name)
            native = median_seconds(runs, repeat, run_native, fn, arg)
            print(f"| {name:<26} | {'native (asyncio)':<34} | {native * 1e3:>10.3f} | {'':>12} |")
            for label, url in stores.items():
                with resumable.Runtime(url) as rt:
                    expected = asyncio.run(fn(arg))
                    assert rt.run(fn, arg) == expected, "durable result differs from native"
                    t = median_seconds(runs, repeat, rt.run, fn, arg)
                per_await = (t - native) / AWAITS[name] * 1e6
                print(f"| {name:<26} | {label:<34} | {t * 1e3:>10.3f} | {per_await:>12.1f} |")
        # 50 runs at once in one loop: commits overlap with the runs' own work.
        for label, url in stores.items():
            with resumable.Runtime(url) as rt:
                t = median_seconds(1, repeat, run_fifty, rt, mod.steps) / 50
            per_await = t / AWAITS["steps"] * 1e6
            print(
                f"| {'steps, 50 at once':<26} | {label:<34} | {t * 1e3:>10.3f} | {per_await:>12.1f} |"
            )


if __name__ == "__main__":
    main()
