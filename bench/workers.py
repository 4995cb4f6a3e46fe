"""Many workers on one store: checkpoints per second and run latency.

    python bench/workers.py                  # SQLite, and PostgreSQL if reachable
    python bench/workers.py --quick          # a smoke check
    python bench/workers.py --postgres URL   # default $RESUMABLE_TEST_POSTGRES, else
                                             # postgresql://postgres@127.0.0.1:5432/test

Writes a module with one function (`job`: ten awaits of a plain coroutine,
so ten checkpoints and a result per run), compiles it, and for each store
and worker count (1 and 3 `resumable worker` processes, `--concurrency 16`
each, default polling: 0.2 s on SQLite; on PostgreSQL LISTEN/NOTIFY, with
a 2 s fallback poll) times:

- throughput: `--runs` runs dispatched before the workers start, until
  every one has completed; checkpoints per second = runs x 10 / seconds;
- latency: with the workers idle, one run dispatched at a time, from
  dispatch to completed as the dispatching process sees it (median).

Each figure is set against the same store's single worker measured in the
same run (the ratio), and PostgreSQL's against SQLite's. SQLite is the
default `synchronous=FULL`; PostgreSQL is the server as it runs (fsync on).
Each PostgreSQL measurement gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import resumable
from resumable_compiler.build import compile_file

SOURCE = """
import resumable


async def work(x):
    return x + 1


@resumable.function
async def job(n):
    total = n
    for i in range(10):
        total = await work(total)
    return total
"""

AWAITS = 10


def start_workers(count: int, url: str, folder: Path) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESUMABLE_")}
    return [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "resumable", "worker", "--store", url),
                *("--module", "bench_jobs", "--concurrency", "16"),
            ],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(timeout=30)


def completed(rt: resumable.Runtime) -> int:
    return len(rt.store.list_runs(statuses=["completed"]))


def measure(url: str, count: int, runs: int, latencies: int, folder: Path) -> tuple[float, float]:
    """(checkpoints per second, median latency in ms) with `count` workers."""
    sys.path.insert(0, str(folder))
    import bench_jobs

    with resumable.Runtime(url) as rt:
        for i in range(runs):
            rt.dispatch(bench_jobs.job, i, run_id=f"t{i}")
        workers = start_workers(count, url, folder)
        try:
            start = time.perf_counter()
            while completed(rt) < runs:
                if any(w.poll() is not None for w in workers):
                    raise SystemExit(f"a worker exited early on {url}")
                time.sleep(0.02)
            rate = runs * AWAITS / (time.perf_counter() - start)
            times = []
            for i in range(latencies):
                run_id = f"l{i}"
                begin = time.perf_counter()
                rt.dispatch(bench_jobs.job, i, run_id=run_id)
                while rt.status(run_id) != "completed":
                    time.sleep(0.001)
                times.append((time.perf_counter() - begin) * 1e3)
        finally:
            stop(workers)
    return rate, statistics.median(times)


def postgres_url(base: str) -> str | None:
    """A fresh schema on the server at `base`, or None if it is unreachable."""
    try:
        import psycopg
    except ImportError:
        return None
    try:
        with psycopg.connect(base, connect_timeout=3):
            pass
    except psycopg.Error:
        return None
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema=bench_{uuid.uuid4().hex[:10]}"


def drop_schema(url: str) -> None:
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&"))["schema"]
    extra = "&".join(p for p in query.split("&") if not p.startswith("schema="))
    with psycopg.connect(base + ("?" + extra if extra else ""), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--latencies", type=int, default=30)
    default_pg = os.environ.get(
        "RESUMABLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--postgres", default=default_pg)
    args = parser.parse_args()
    runs, latencies = (120, 8) if args.quick else (args.runs, args.latencies)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bench_jobs.py").write_text(SOURCE)
        result = compile_file(str(folder / "bench_jobs.py"))
        if result.errors:
            raise SystemExit("\n".join(str(e) for e in result.errors))
        rows: list[tuple[str, int, float, float]] = []
        engines = [("SQLite (FULL)", lambda n: f"sqlite:///{folder}/runs{n}.db")]
        if postgres_url(args.postgres) is not None:
            engines.append(("PostgreSQL", lambda n: postgres_url(args.postgres) or ""))
        else:
            print(f"PostgreSQL at {args.postgres} is not reachable: SQLite only\n")
        for label, make in engines:
            for count in (1, 3):
                url = make(count)
                try:
                    rate, latency = measure(url, count, runs, latencies, folder)
                finally:
                    if url.startswith("postgresql"):
                        drop_schema(url)
                rows.append((label, count, rate, latency))
        print(f"{runs} runs of {AWAITS} awaits; latency: median of {latencies} lone runs\n")
        print("| store | workers | checkpoints/s | vs 1 worker | vs SQLite | latency ms |")
        print("|---|---|---:|---:|---:|---:|")
        single = {(label, 1): rate for label, count, rate, _ in rows if count == 1}
        sqlite = {count: rate for label, count, rate, _ in rows if label.startswith("SQLite")}
        for label, count, rate, latency in rows:
            vs_one = rate / single[label, 1]
            vs_sqlite = rate / sqlite[count]
            print(
                f"| {label} | {count} | {rate:,.0f} | {vs_one:.2f}x | {vs_sqlite:.2f}x | "
                f"{latency:.1f} |"
            )


if __name__ == "__main__":
    main()
