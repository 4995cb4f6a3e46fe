"""Fan out over regions, killed in the middle, resumed without redoing work.

    resumable compile examples/
    python examples/fanout.py report-1 --crash   # SIGKILLed while "asia" is still fetching
    python examples/fanout.py report-1           # resumes: "us" and "eu" are not fetched
                                                 # again, "asia" goes on from its checkpoint

`report` gathers one child run per region (`resumable.gather`): they run
concurrently, each a child run with its own id (report-1/1.0, /1.1, ...).
A child that completed before the kill returns its stored result when the
run resumes; its body never runs again. The quote of each region races two
providers (`resumable.race`): the first answer wins and is committed before
the race returns, and the slower provider is cancelled (its `finally`
block runs). The store is `.resumable/state.db`, as for the other examples.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading

import resumable

REGIONS = {"us": 0.1, "eu": 0.2, "asia": 3.0}  # how long each region's report takes


@resumable.function
async def quote(region: str, provider: str, delay: float) -> str:
    try:
        await asyncio.sleep(delay)
        return f"{provider} quotes {region}"
    finally:
        if delay > 0.05:
            print(f"  {provider}: done with {region}", flush=True)


@resumable.function
async def fetch(region: str) -> dict[str, object]:
    print(f"  fetching {region}", flush=True)
    await asyncio.sleep(REGIONS[region])
    best = await resumable.race(quote(region, "fast-fx", 0.01), quote(region, "slow-fx", 0.5))
    print(f"  fetched {region} ({best})", flush=True)
    return {"region": region, "sales": len(region) * 100, "quote": best}


@resumable.function
async def report(name: str) -> str:
    rows = await resumable.gather(*(fetch(region) for region in REGIONS))
    total = sum(int(row["sales"]) for row in rows)  # type: ignore[call-overload]
    return f"{name}: {len(rows)} regions, total sales {total}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument(
        "--crash", action="store_true", help="SIGKILL this process 1.5 s in (asia still fetching)"
    )
    args = parser.parse_args(argv)
    if args.crash:
        threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGKILL)).start()
    with resumable.Runtime() as rt:
        print(rt.run(report, args.name, run_id=args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
