"""PostgreSQL drivers on the store's hot path: psycopg 3 (sync and async) against asyncpg.

    python3 -m venv /tmp/drivers-venv
    /tmp/drivers-venv/bin/pip install -q asyncpg 'psycopg[binary]' psycopg_pool
    /tmp/drivers-venv/bin/python bench/pg_drivers.py           # about a minute or two
    /tmp/drivers-venv/bin/python bench/pg_drivers.py --quick   # a smoke check
    ... --postgres URL   # default $RESUMABLE_TEST_POSTGRES, else
                         # postgresql://postgres@127.0.0.1:5432/test

asyncpg is not a dependency of resumable: without it its row says how to
get it. The script needs neither resumable nor its compiler.

It makes a schema of its own (dropped at the end) with the two tables of
the store's hot path, `runs` and `leases`, one running run per task with a
live lease, and times what the store does at every await: one transaction
holding the fenced checkpoint write

    UPDATE runs SET checkpoint = $1, seq = $2, updated_at = $3
    WHERE run_id = $4 AND status = 'running' AND generation = $5
      AND EXISTS (SELECT 1 FROM leases l WHERE l.run_id = runs.run_id
                  AND l.holder = $6 AND l.expires_at > now())

(a 300-byte checkpoint; every write must hit its row, or the script
stops), then its commit. Drivers, each used from asyncio tasks:

- psycopg 3 sync: a psycopg_pool ConnectionPool driven by a
  ThreadPoolExecutor of `--pool` threads, each call submitted and awaited
  with `asyncio.wrap_future` (what PostgresStore does);
- psycopg 3 async: an AsyncConnectionPool;
- asyncpg: `asyncpg.create_pool` with its defaults: each release of a
  connection sends a reset query (`pg_advisory_unlock_all(); CLOSE ALL;
  UNLISTEN *; RESET ALL`), a round trip; and again with `reset=` a no-op
  coroutine, to show what that round trip costs;
- and, for (a) and (c) only, psycopg 3 sync called directly from the
  calling thread, no event loop, as the CLI and sync entry points do.

Every pool holds `--pool` connections (default 4, the store's `?pool=`),
all autocommit, transactions opened explicitly (BEGIN ... COMMIT), and
statements prepared by the driver as it does by default. Measured:

- (a) latency: one task doing `--steps` checkpoints one after the other,
  µs per checkpoint;
- (b) throughput: 16 tasks at once, each doing `--steps` checkpoints in
  sequence on a run of its own, checkpoints per second;
- (c) a point read, `SELECT generation, status, checkpoint, seq, updated_at
  FROM runs WHERE run_id = $1` (one statement, no explicit transaction),
  `--reads` of them in sequence, µs per read.

`--rounds` rounds (default 3). In a round each figure's operations are cut
into `--chunks` chunks (default 8) and the contenders take turns chunk by
chunk, in an order rotated each turn, so all see the same machine; the
figure is the median over rounds, and the ratio is the
median of per-round ratios against psycopg 3 sync measured in the same
round (a shared machine's speed drifts; ratios drift less), with the
lowest and highest per-round ratio in brackets. Time ratios: lower is
faster; rate ratios: higher is faster. `synchronous_commit` is
the server's own (normally on: every commit waits for its WAL flush).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import math
import os
import platform
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import psycopg_pool

try:
    import asyncpg
except ImportError:
    asyncpg = None

HOW_TO_GET_ASYNCPG = (
    "python3 -m venv /tmp/drivers-venv && "
    "/tmp/drivers-venv/bin/pip install -q asyncpg 'psycopg[binary]' psycopg_pool"
)

HOLDER = "bench-worker"
CHECKPOINT = os.urandom(300)
RUNS = 16  # tasks at once in (b)

SCHEMA_SQL = """
CREATE TABLE runs (
    run_id text PRIMARY KEY,
    generation bigint NOT NULL,
    status text NOT NULL,
    checkpoint bytea,
    seq bigint NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE leases (
    run_id text PRIMARY KEY,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL
);
"""

UPDATE = (
    "UPDATE runs SET checkpoint = $1, seq = $2, updated_at = $3 "
    "WHERE run_id = $4 AND status = 'running' AND generation = $5 "
    "AND EXISTS (SELECT 1 FROM leases l WHERE l.run_id = runs.run_id "
    "AND l.holder = $6 AND l.expires_at > now())"
)
READ = "SELECT generation, status, checkpoint, seq, updated_at FROM runs WHERE run_id = $1"


def psycopg_sql(sql: str) -> str:
    """$n placeholders as psycopg's %s (each used once, in order)."""
    for n in range(9, 0, -1):
        sql = sql.replace(f"${n}", "%s")
    return sql


UPDATE_PG, READ_PG = psycopg_sql(UPDATE), psycopg_sql(READ)


def fenced(rowcount: int, run_id: str) -> None:
    if rowcount != 1:
        raise SystemExit(f"the fenced write of {run_id} changed {rowcount} rows, not 1")


class Driver:
    """One way to reach the server: `checkpoint` and `read` are awaited from
    asyncio tasks (`sync_*`, if set, are the same called with no loop)."""

    name: str
    sync_checkpoint: Callable[[str, int], None] | None = None
    sync_read: Callable[[str], Any] | None = None

    async def open(self) -> None: ...

    async def checkpoint(self, run_id: str, seq: int) -> None:
        raise NotImplementedError

    async def read(self, run_id: str) -> Any:
        raise NotImplementedError

    async def close(self) -> None: ...


class PsycopgSync(Driver):
    """What PostgresStore does: a sync pool, called on a thread pool."""

    name = "psycopg 3 sync + ConnectionPool, 4 threads (the store)"

    def __init__(self, url: str, schema: str, size: int) -> None:
        self.name = self.name.replace("4", str(size))
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=size,
            max_size=size,
            kwargs={"autocommit": True, "options": f"-csearch_path={schema}"},
            open=False,
        )
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=size)

    async def open(self) -> None:
        self.pool.open(wait=True, timeout=30)

    def sync_checkpoint(self, run_id: str, seq: int) -> None:
        with self.pool.connection() as conn, conn.transaction():
            cur = conn.execute(UPDATE_PG, (CHECKPOINT, seq, time.time(), run_id, 1, HOLDER))
            fenced(cur.rowcount, run_id)

    def sync_read(self, run_id: str) -> Any:
        with self.pool.connection() as conn:
            return conn.execute(READ_PG, (run_id,)).fetchone()

    async def checkpoint(self, run_id: str, seq: int) -> None:
        await asyncio.wrap_future(self.executor.submit(self.sync_checkpoint, run_id, seq))

    async def read(self, run_id: str) -> Any:
        return await asyncio.wrap_future(self.executor.submit(self.sync_read, run_id))

    async def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.pool.close()


class PsycopgAsync(Driver):
    name = "psycopg 3 async + AsyncConnectionPool"

    def __init__(self, url: str, schema: str, size: int) -> None:
        self.pool = psycopg_pool.AsyncConnectionPool(
            url,
            min_size=size,
            max_size=size,
            kwargs={"autocommit": True, "options": f"-csearch_path={schema}"},
            open=False,
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def checkpoint(self, run_id: str, seq: int) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(UPDATE_PG, (CHECKPOINT, seq, time.time(), run_id, 1, HOLDER))
            fenced(cur.rowcount, run_id)

    async def read(self, run_id: str) -> Any:
        async with self.pool.connection() as conn:
            cur = await conn.execute(READ_PG, (run_id,))
            return await cur.fetchone()

    async def close(self) -> None:
        await self.pool.close()


class Asyncpg(Driver):
    name = "asyncpg + create_pool"
    reset: Callable[[Any], Awaitable[None]] | None = None  # None: asyncpg's reset query

    def __init__(self, url: str, schema: str, size: int) -> None:
        self.url, self.schema, self.size = url, schema, size

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(
            self.url,
            min_size=self.size,
            max_size=self.size,
            server_settings={"search_path": self.schema},
            reset=self.reset,
        )

    async def checkpoint(self, run_id: str, seq: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(UPDATE, CHECKPOINT, seq, time.time(), run_id, 1, HOLDER)
            fenced(int(status.rsplit(" ", 1)[1]), run_id)

    async def read(self, run_id: str) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchrow(READ, run_id)

    async def close(self) -> None:
        await self.pool.close()


async def _no_reset(conn: Any) -> None:
    """Release without asyncpg's reset query (which costs a round trip)."""


class AsyncpgNoReset(Asyncpg):
    name = "asyncpg + create_pool(reset=no-op)"
    reset = staticmethod(_no_reset)


def set_up(url: str, schema: str, drivers: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path = {schema}")
        conn.execute(SCHEMA_SQL)
        ids = [f"{d}-{i}" for d in drivers for i in range(RUNS)]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO runs VALUES (%s, 1, 'running', %s, 0, %s)",
                [(i, CHECKPOINT, time.time()) for i in ids],
            )
            cur.executemany(
                "INSERT INTO leases VALUES (%s, %s, now() + interval '1 hour')",
                [(i, HOLDER) for i in ids],
            )


def drop(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def sequence(step: Callable[[str, int], Awaitable[None]], run_id: str, steps: int) -> None:
    for seq in range(steps):
        await step(run_id, seq)


#: The figures, each timed for every contender (`direct`: the store's sync
#: pool called from this thread, no event loop; not for 16 runs at once).
FIGURES = ("latency", "rate", "read")


async def timed(drivers: dict[str, Driver], key: str, figure: str, n: int) -> float:
    """Seconds for `n` operations of `figure` by contender `key`."""
    one = f"{key}-0"
    driver = drivers["sync" if key == "direct" else key]
    start = time.perf_counter()
    if key == "direct":
        assert driver.sync_checkpoint is not None and driver.sync_read is not None
        if figure == "latency":
            for seq in range(n):
                driver.sync_checkpoint(one, seq)
        else:
            for _ in range(n):
                driver.sync_read(one)
    elif figure == "latency":
        await sequence(driver.checkpoint, one, n)
    elif figure == "rate":
        await asyncio.gather(*(sequence(driver.checkpoint, f"{key}-{i}", n) for i in range(RUNS)))
    else:
        for _ in range(n):
            row = await driver.read(one)
        assert row is not None and bytes(row[2]) == CHECKPOINT
    return time.perf_counter() - start


async def one_round(
    drivers: dict[str, Driver], keys: list[str], args: argparse.Namespace, r: int
) -> dict[str, dict[str, float]]:
    """One round: each figure's operations cut into `--chunks` chunks, the
    contenders taking turns chunk by chunk (in an order rotated each
    chunk), so that all contenders of a figure see the same machine."""
    seconds = {key: dict.fromkeys(FIGURES, 0.0) for key in keys}
    for figure in FIGURES:
        n = (args.reads if figure == "read" else args.steps) // args.chunks
        turn = [k for k in keys if not (k == "direct" and figure == "rate")]
        for c in range(args.chunks):
            shift = (r + c) % len(turn)
            for key in turn[shift:] + turn[:shift]:
                seconds[key][figure] += await timed(drivers, key, figure, n)
    steps, reads = args.steps // args.chunks * args.chunks, args.reads // args.chunks * args.chunks
    return {
        key: {
            "latency": s["latency"] / steps * 1e6,
            "rate": RUNS * steps / s["rate"] if s["rate"] else float("nan"),
            "read": s["read"] / reads * 1e6,
        }
        for key, s in seconds.items()
    }


async def bench(url: str, schema: str, args: argparse.Namespace) -> None:
    kinds: dict[str, type[Driver]] = {"sync": PsycopgSync, "async": PsycopgAsync}
    if asyncpg is not None:
        kinds["asyncpg"] = Asyncpg
        kinds["asyncpg-noreset"] = AsyncpgNoReset
    set_up(url, schema, [*kinds, "direct"])
    drivers = {key: kind(url, schema, args.pool) for key, kind in kinds.items()}
    keys = [*drivers, "direct"]
    results: dict[str, list[dict[str, float]]] = {key: [] for key in keys}
    try:
        for d in drivers.values():
            await d.open()
        for key in keys:  # warm up: statements prepared, threads started
            await timed(drivers, key, "latency", 10)
            await timed(drivers, key, "read", 10)
        for r in range(args.rounds):
            for key, figures in (await one_round(drivers, keys, args, r)).items():
                results[key].append(figures)
    finally:
        for d in drivers.values():
            await d.close()
    report(drivers, results)


def report(drivers: dict[str, Driver], results: dict[str, list[dict[str, float]]]) -> None:
    base = results["sync"]
    names = {key: d.name for key, d in drivers.items()}
    names["direct"] = "psycopg 3 sync, called directly (no event loop)"

    def cell(rounds: list[dict[str, float]], figure: str) -> str:
        if any(math.isnan(r[figure]) for r in rounds):
            return "| — | — "
        median = statistics.median(r[figure] for r in rounds)
        ratios = [r[figure] / b[figure] for r, b in zip(rounds, base, strict=True)]
        if len(ratios) < 2 or rounds is base:
            return f"| {median:,.0f} | {ratios[0]:.2f}x "
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        return f"| {median:,.0f} | {statistics.median(ratios):.2f}x ({spread}) "

    print(
        "| driver | (a) µs per checkpoint | vs sync | (b) checkpoints/s, 16 runs | vs sync "
        "| (c) µs per point read | vs sync |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key, rounds in results.items():
        print(f"| {names[key]} " + "".join(cell(rounds, f) for f in FIGURES) + "|")
    if asyncpg is None:
        print(f"| asyncpg: not installed; to get it: `{HOW_TO_GET_ASYNCPG}` | | | | | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer checkpoints and reads")
    parser.add_argument("--steps", type=int, default=400, help="checkpoints per run")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=8, help="turns per figure and round")
    parser.add_argument("--pool", type=int, default=4, help="connections (and threads)")
    default_pg = os.environ.get(
        "RESUMABLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--postgres", default=default_pg)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.reads, args.chunks = 40, 200, 4
    url = args.postgres
    with psycopg.connect(url, connect_timeout=5) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
        commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
    versions = f"psycopg {psycopg.__version__}, psycopg_pool {psycopg_pool.__version__}"
    if asyncpg is not None:
        versions += f", asyncpg {asyncpg.__version__}"
    print(f"Python {platform.python_version()}, {versions}")
    print(f"PostgreSQL {server}, synchronous_commit={commit}, pool of {args.pool}")
    print(
        f"{args.steps} checkpoints per run, {args.reads} reads, "
        f"median of {args.rounds} interleaved rounds\n"
    )
    schema = f"bench_drivers_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(bench(url, schema, args))
    finally:
        drop(url, schema)


if __name__ == "__main__":
    main()
