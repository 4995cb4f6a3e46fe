"""Many workers on one store: checkpoints per second and run latency.

    python bench/workers.py                  # SQLite, and PostgreSQL if reachable (a few minutes)
    python bench/workers.py --quick          # a smoke check
    python bench/workers.py --json out.json  # the Figure for bench/all.py
    python bench/workers.py --postgres URL   # default $RESUMABLE_TEST_POSTGRES, else
                                             # postgresql://postgres@127.0.0.1:5432/test

Writes a module with one function (`job`: ten awaits of a plain coroutine,
so ten checkpoints and a result per run), compiles it, and for each store
and worker count (1, 2 and 3 `resumable worker` processes, `--concurrency
16` each, default polling: 0.2 s on SQLite; on PostgreSQL LISTEN/NOTIFY,
with a 2 s fallback poll) times:

- throughput: `--runs` runs dispatched before the workers start; the
  completed runs are counted (one `COUNT(*)` every 50 ms, on a connection
  of the script's own) and the rate is taken between 10% and 90% of them
  done, so the workers' start (imports, connections) and the tail (the last
  runs of a few slots) are left out: checkpoints per second = runs done in
  that window x 10 / its seconds;
- latency: with the workers idle, one run dispatched at a time, from
  dispatch to completed as the dispatching process sees it (median).

Each worker count is measured `--rounds` times, the counts interleaved
(1, 2, 3, 1, 2, 3, ...), so that each round's ratio to one worker is taken
under the same load (the machine may be shared: the PostgreSQL server runs
on the same cores as the workers). SQLite is the default
`synchronous=FULL`; PostgreSQL is the server as it runs (fsync on). Each
PostgreSQL measurement gets a schema of its own, dropped afterwards.

Target: on PostgreSQL, checkpoints per second with 3 workers at least 1.5x
one worker's (the median of the rounds' ratios); "not measured" when the
server is not reachable.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from report import Figure, Target, median_and_spread, write

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


class Counter:
    """Completed runs, one COUNT(*) on a connection of the script's own."""

    def __init__(self, url: str) -> None:
        self.conn: Any
        if url.startswith("sqlite"):
            path = url.removeprefix("sqlite:///").split("?", 1)[0]
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        else:
            import psycopg

            base, schema, extra = split_schema(url)
            self.conn = psycopg.connect(base + extra, autocommit=True)
            self.conn.execute(f"SET search_path = {schema}")

    def __call__(self) -> int:
        sql = "SELECT COUNT(*) FROM runs WHERE status = 'completed'"
        return int(self.conn.execute(sql).fetchone()[0])

    def close(self) -> None:
        self.conn.close()


def measure(url: str, count: int, runs: int, latencies: int, folder: Path) -> tuple[float, float]:
    """(checkpoints per second, median latency in ms) with `count` workers."""
    sys.path.insert(0, str(folder))
    import bench_jobs

    with resumable.Runtime(url) as rt:
        for i in range(runs):
            rt.dispatch(bench_jobs.job, i, run_id=f"t{i}")
        counter = Counter(url)
        workers = start_workers(count, url, folder)
        try:
            low, high = runs // 10, runs - runs // 10
            marks: dict[int, tuple[float, int]] = {}
            while True:
                done, now = counter(), time.perf_counter()
                if done >= low and low not in marks:
                    marks[low] = (now, done)
                if done >= high:
                    marks[high] = (now, done)
                    break
                if any(w.poll() is not None for w in workers):
                    raise SystemExit(f"a worker exited early on {url}")
                time.sleep(0.05)
            (t0, c0), (t1, c1) = marks[low], marks[high]
            rate = (c1 - c0) * AWAITS / (t1 - t0)
            while counter() < runs:
                time.sleep(0.05)
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
            counter.close()
    return rate, statistics.median(times)


def postgres_url(base: str) -> tuple[str | None, str]:
    """A fresh schema on the server at `base`, or None and why not."""
    try:
        import psycopg
    except ImportError:
        return None, "psycopg is not installed (pip install 'resumable[postgres]')"
    try:
        with psycopg.connect(base, connect_timeout=3):
            pass
    except psycopg.Error as e:
        return None, f"PostgreSQL at {base} is not reachable: {str(e).strip()[:200]}"
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema=bench_{uuid.uuid4().hex[:10]}", ""


def split_schema(url: str) -> tuple[str, str, str]:
    """(the URL before its query, the schema, the rest of the query as ?...)."""
    base, _, query = url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&"))["schema"]
    extra = "&".join(p for p in query.split("&") if not p.startswith("schema="))
    return base, schema, "?" + extra if extra else ""


def drop_schema(url: str) -> None:
    import psycopg

    base, schema, extra = split_schema(url)
    with psycopg.connect(base + extra, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


COUNTS = (1, 2, 3)
LIMIT = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--json", help="write the Figure here")
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latencies", type=int, default=20)
    default_pg = os.environ.get(
        "RESUMABLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--postgres", default=default_pg)
    args = parser.parse_args()
    runs, latencies, rounds = (
        (150, 4, 1) if args.quick else (args.runs, args.latencies, args.rounds)
    )
    figure = Figure("workers")
    target = "PostgreSQL: checkpoints/s with 3 workers vs 1 worker"

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bench_jobs.py").write_text(SOURCE)
        result = compile_file(str(folder / "bench_jobs.py"))
        if result.errors:
            raise SystemExit("\n".join(str(e) for e in result.errors))
        made = iter(range(10**6))
        engines: list[tuple[str, Callable[[], str]]] = [
            ("SQLite (FULL)", lambda: f"sqlite:///{folder}/runs{next(made)}.db")
        ]
        pg, why = postgres_url(args.postgres)
        if pg is not None:
            engines.append(("PostgreSQL", lambda: postgres_url(args.postgres)[0] or ""))
        else:
            print(f"{why}: SQLite only\n")
        #: (store, workers) -> [(checkpoints/s, latency ms)], one per round.
        got: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for label, make in engines:
            for _ in range(rounds):
                for count in COUNTS:
                    url = make()
                    try:
                        measured = measure(url, count, runs, latencies, folder)
                    finally:
                        if url.startswith("postgresql"):
                            drop_schema(url)
                    got.setdefault((label, count), []).append(measured)
                    print(
                        f"{label}, {count} worker(s): {measured[0]:,.0f} checkpoints/s", flush=True
                    )

    print(f"\n{runs} runs of {AWAITS} awaits; latency: median of {latencies} lone runs\n")
    print("| store | workers | checkpoints/s | vs 1 worker | latency ms |")
    print("|---|---|---:|---:|---:|")
    lines: dict[str, dict[str, list[float]]] = {}
    for (label, count), values in got.items():
        rate, spread = median_and_spread([v[0] for v in values])
        latency = statistics.median(v[1] for v in values)
        ratios = [v[0] / one[0] for v, one in zip(values, got[label, 1], strict=True)]
        ratio, ratio_spread = median_and_spread(ratios)
        print(f"| {label} | {count} | {rate:,.0f} | {ratio:.2f}x | {latency:.1f} |")
        figure.row(f"{label}, {count} worker(s): checkpoints/s", rate, "1/s", spread)
        figure.row(f"{label}, {count} worker(s): latency of a lone run", latency, "ms")
        if count > 1:
            figure.row(f"{label}, {count} workers vs 1", ratio, "x", ratio_spread)
        line = lines.setdefault(label, {"x": [], "y": []})
        line["x"].append(count)
        line["y"].append(rate)
        if label == "PostgreSQL" and count == 3:
            one = statistics.median(v[0] for v in got[label, 1])
            figure.targets.append(
                Target(
                    target, ratio, LIMIT, "at least",
                    detail=f"3 workers {rate:,.0f} / 1 worker {one:,.0f} checkpoints/s",
                    spread=ratio_spread,
                )
            )  # fmt: skip
    if not any(t.name == target for t in figure.targets):
        figure.targets.append(Target(target, None, LIMIT, "at least", note=why))
    figure.series["workers"] = {
        "title": "Throughput against workers (each --concurrency 16)",
        "xlabel": "workers",
        "ylabel": "checkpoints per second",
        "log_x": False,
        "lines": lines,
    }
    figure.setup = (
        f"{runs} runs of {AWAITS} awaits, {rounds} round(s), workers --concurrency 16; "
        f"{os.cpu_count()} CPUs shared with the PostgreSQL server"
    )
    write(figure, args.json)


if __name__ == "__main__":
    main()
