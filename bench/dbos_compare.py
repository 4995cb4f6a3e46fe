"""Per-step cost against DBOS Transact, same machine, same store, same durability.

    python bench/dbos_compare.py                 # about a minute
    python bench/dbos_compare.py --quick         # a smoke check
    python bench/dbos_compare.py --json out.json # the Figure for bench/all.py

One workflow of `--steps` (20) sequential steps, each a trivial function
(`return x + 1`), run one at a time (a lone run), `--workflows` of them per
round:

- resumable: the compiled `@resumable.function` awaiting a plain coroutine
  20 times, `rt.run` on the default `sqlite:///` store (WAL,
  `synchronous=FULL`), in this interpreter;
- DBOS Transact: a `@DBOS.workflow()` calling a `@DBOS.step()` 20 times, on
  its SQLite system database (`system_database_url="sqlite:///..."`), in a
  venv of its own (bench/.venv-dbos, created here with `pip install dbos`
  and reused), as a subprocess driven over a pipe. DBOS leaves SQLite in its
  rollback-journal mode; to hold it to the same durability as resumable, an
  SQLAlchemy `connect` event on every engine sets `journal_mode=WAL` and
  `synchronous=FULL` (DBOS's own connect event still runs: IMMEDIATE
  transactions, busy_timeout, foreign keys), and the script reads both
  PRAGMAs back through DBOS's own engine. A second DBOS row runs DBOS as it
  comes (rollback journal, `synchronous=FULL`): not the target, for context.

The rate, each round: `--at-once` (100) workflows of the same steps started
at once and waited for, steps per second on each side: resumable's
`rt.call` of each in one event loop (`asyncio.gather`), their checkpoints
sharing commits; DBOS's `DBOS.start_workflow` of each (a thread of DBOS's
executor each) and `get_result` of every handle.

Per-step cost = (workflow time - native time) / steps, where native is the
same function run undecorated (asyncio for resumable's coroutine, a plain
call for DBOS's). Rounds interleave the contenders (DBOS, then resumable,
then a floor, then DBOS as it comes), so each round's ratio is taken under
the same load; the figures are medians over rounds. The floor is what one
durable step costs at the least at this durability, whoever writes it: a
one-row commit with sqlite3 alone (WAL, FULL: one fsync of the WAL).

Target: resumable's per-step rate at least 10x DBOS's (WAL, FULL), read
two ways, each its own row: one workflow at a time (DBOS µs per step /
resumable µs per step >= 10) and 100 at once (resumable steps/s / DBOS
steps/s >= 10). If DBOS cannot be installed
(PyPI unreachable, no wheel), the target is "not measured" with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from compiled import compiled_module
from report import Figure, Target, median_and_spread, write

import resumable

HERE = Path(__file__).parent
VENV = HERE / ".venv-dbos"
LIMIT = 10.0

SOURCE = """
import resumable


async def inc(x):
    return x + 1


@resumable.function
async def workflow(n):
    x = 0
    for _ in range(n):
        x = await inc(x)
    return x
"""

#: The DBOS side, run by the DBOS venv's python: argv = sqlite path, mode
#: ("wal_full" or "default"). Reads "M N" lines (M workflows of N steps),
#: answers one JSON line of seconds per workflow: native and durable.
DBOS_SCRIPT = r"""
import json, sys, time
import sqlalchemy as sa
from sqlalchemy import event

path, mode = sys.argv[1], sys.argv[2]
if mode == "wal_full":
    @event.listens_for(sa.engine.Engine, "connect")
    def _durability(dbapi_conn, record):
        if type(dbapi_conn).__module__.startswith("sqlite3"):
            dbapi_conn.execute("PRAGMA journal_mode=WAL").fetchall()
            dbapi_conn.execute("PRAGMA synchronous=FULL")

import dbos as dbos_package
from dbos import DBOS

dbos = DBOS(config={
    "name": "bench", "system_database_url": "sqlite:///" + path,
    "run_admin_server": False, "log_level": "WARNING",
})

def plain_inc(x):
    return x + 1

def plain_workflow(n):
    x = 0
    for _ in range(n):
        x = plain_inc(x)
    return x

@DBOS.step()
def inc(x):
    return x + 1

@DBOS.workflow()
def workflow(n):
    x = 0
    for _ in range(n):
        x = inc(x)
    return x

DBOS.launch()
with dbos._sys_db.engine.connect() as conn:
    journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
assert workflow(3) == 3
version = getattr(dbos_package, "__version__", None)
if version is None:
    from importlib.metadata import version as _v
    version = _v("dbos")
print(json.dumps({"ready": True, "journal": journal, "synchronous": synchronous,
                  "version": version}), flush=True)
for line in sys.stdin:
    m, n, at_once = map(int, line.split())
    if at_once:
        start = time.perf_counter()
        handles = [DBOS.start_workflow(workflow, n) for _ in range(m)]
        assert all(h.get_result() == n for h in handles)
        print(json.dumps({"at_once": time.perf_counter() - start}), flush=True)
        continue
    start = time.perf_counter()
    for _ in range(m):
        assert plain_workflow(n) == n
    native = (time.perf_counter() - start) / m
    start = time.perf_counter()
    for _ in range(m):
        assert workflow(n) == n
    durable = (time.perf_counter() - start) / m
    print(json.dumps({"native": native, "durable": durable}), flush=True)
DBOS.destroy()
"""


def dbos_python() -> tuple[Path | None, str]:
    """The DBOS venv's python (created and `pip install dbos` if absent), or
    None and why not."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import dbos"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, ""
    try:
        urllib.request.urlopen("https://pypi.org/simple/dbos/", timeout=10).close()
        reachable = ""
    except OSError as e:
        reachable = f" (PyPI at https://pypi.org is not reachable: {e})"
    if not python.exists():
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True
        )
        if made.returncode != 0:
            return None, f"cannot create {VENV}: {made.stderr.strip()[-300:]}"
    print(f"installing DBOS into {VENV} ...", flush=True)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "dbos"], capture_output=True, text=True
    )
    if done.returncode != 0 or subprocess.run(check, capture_output=True).returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
        return None, f"pip install dbos failed{reachable}: {tail[0][:300]}"
    return python, ""


class DBOSProcess:
    def __init__(self, python: Path, folder: Path, mode: str) -> None:
        script = folder / "dbos_side.py"
        script.write_text(DBOS_SCRIPT)
        self.proc = subprocess.Popen(
            [str(python), str(script), str(folder / f"dbos_{mode}.sqlite"), mode],
            cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.info = self._answer()
        if not self.info.get("ready"):
            raise RuntimeError(f"DBOS ({mode}) did not start: {self.info}")

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the DBOS process exited ({self.proc.wait()})")
        return json.loads(line)  # type: ignore[no-any-return]

    def _ask(self, workflows: int, steps: int, at_once: bool) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{workflows} {steps} {int(at_once)}\n")
        self.proc.stdin.flush()
        return self._answer()

    def round(self, workflows: int, steps: int) -> tuple[float, float]:
        got = self._ask(workflows, steps, False)
        return got["native"], got["durable"]

    def at_once(self, workflows: int, steps: int) -> float:
        """Seconds for `workflows` started at once (DBOS.start_workflow, each
        on a thread of DBOS's executor) to all finish."""
        return float(self._ask(workflows, steps, True)["at_once"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def load(folder: Path) -> ModuleType:
    return compiled_module(folder, "bench_dbos_compare", SOURCE)


def resumable_round(
    rt: resumable.Runtime, fn: Any, workflows: int, steps: int
) -> tuple[float, float]:
    start = time.perf_counter()
    for _ in range(workflows):
        assert asyncio.run(fn(steps)) == steps
    native = (time.perf_counter() - start) / workflows
    start = time.perf_counter()
    for _ in range(workflows):
        assert rt.run(fn, steps) == steps
    durable = (time.perf_counter() - start) / workflows
    return native, durable


def resumable_at_once(rt: resumable.Runtime, fn: Any, workflows: int, steps: int) -> float:
    """Seconds for `workflows` runs started at once (`rt.call` each, one event
    loop, their checkpoints sharing commits) to all finish."""

    async def together() -> None:
        done = await asyncio.gather(*(rt.call(fn, steps) for _ in range(workflows)))
        assert done == [steps] * workflows

    start = time.perf_counter()
    asyncio.run(together())
    return time.perf_counter() - start


def commit_floor(db: Path, commits: int) -> float:
    """Seconds per one-row commit with sqlite3 alone (WAL, synchronous=FULL):
    the fsync every durable step pays at this durability, whoever writes it."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL").fetchall()
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)")
    start = time.perf_counter()
    for i in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (i % 7, b"x" * 100))
        conn.execute("COMMIT")
    took = (time.perf_counter() - start) / commits
    conn.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--json", help="write the Figure here")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workflows", type=int, default=10, help="per round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--at-once", type=int, default=100, help="workflows started at once (the rate row)"
    )
    args = parser.parse_args()
    steps = args.steps
    workflows, rounds = (3, 3) if args.quick else (args.workflows, args.rounds)
    at_once = 10 if args.quick else args.at_once
    figure = Figure("dbos_compare")
    name = "resumable per-step rate vs DBOS Transact's (SQLite, WAL, synchronous=FULL)"
    name_lone = name + ", one workflow at a time"
    name_at_once = name + f", {at_once} workflows at once"

    python, why = dbos_python()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fn = load(folder).workflow
        db = folder / "resumable.db"
        contenders: dict[str, DBOSProcess] = {}
        if python is not None:
            try:
                contenders["wal_full"] = DBOSProcess(python, folder, "wal_full")
                contenders["default"] = DBOSProcess(python, folder, "default")
            except (RuntimeError, json.JSONDecodeError) as e:
                python, why = None, f"DBOS did not run: {e}"
        info = contenders["wal_full"].info if "wal_full" in contenders else {}
        if info and (str(info["journal"]).lower() != "wal" or int(info["synchronous"]) != 2):
            python, why = None, f"DBOS's SQLite is not WAL + FULL: {info}"
        with resumable.Runtime(f"sqlite:///{db}") as rt:
            assert rt.run(fn, steps) == steps  # warm: the compiled code loaded, the schema made
            store: Any = rt.store
            journal = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
            assert journal == "wal" and store.synchronous == "FULL", (journal, store.synchronous)
            for p in contenders.values():
                p.round(1, steps)  # warm
            per_round: dict[str, list[float]] = {
                "resumable": [],
                "wal_full": [],
                "default": [],
                "floor": [],
                "rate_resumable": [],
                "rate_dbos": [],
            }
            ratios: list[float] = []
            ratios_at_once: list[float] = []
            ratios_default: list[float] = []
            for _ in range(rounds):
                got: dict[str, float] = {}
                if "wal_full" in contenders and python is not None:
                    native, durable = contenders["wal_full"].round(workflows, steps)
                    got["wal_full"] = (durable - native) / steps * 1e6
                native, durable = resumable_round(rt, fn, workflows, steps)
                got["resumable"] = (durable - native) / steps * 1e6
                got["floor"] = commit_floor(folder / "floor.db", workflows * steps // 2) * 1e6
                if "default" in contenders and python is not None:
                    native, durable = contenders["default"].round(workflows, steps)
                    got["default"] = (durable - native) / steps * 1e6
                ours = resumable_at_once(rt, fn, at_once, steps)
                got["rate_resumable"] = at_once * steps / ours
                if "wal_full" in contenders and python is not None:
                    theirs = contenders["wal_full"].at_once(at_once, steps)
                    got["rate_dbos"] = at_once * steps / theirs
                    ratios_at_once.append(theirs / ours)
                for key, value in got.items():
                    per_round[key].append(value)
                if "wal_full" in got:
                    ratios.append(got["wal_full"] / got["resumable"])
                if "default" in got:
                    ratios_default.append(got["default"] / got["resumable"])
        for p in contenders.values():
            p.close()

    labels = {
        "resumable": ("resumable, sqlite:/// (WAL, FULL), µs per step", "µs"),
        "wal_full": ("DBOS Transact, SQLite WAL, FULL, µs per step", "µs"),
        "default": ("DBOS Transact as it comes (rollback journal, FULL), µs per step", "µs"),
        "floor": ("floor: one sqlite3 one-row commit (WAL, FULL), µs", "µs"),
        "rate_resumable": (f"resumable, {at_once} workflows at once, steps/s", "steps/s"),
        "rate_dbos": (
            f"DBOS Transact (WAL, FULL), {at_once} workflows at once, steps/s",
            "steps/s",
        ),
    }
    medians: dict[str, float] = {}
    for key, values in per_round.items():
        if values:
            medians[key], spread = median_and_spread(values)
            figure.row(labels[key][0], medians[key], labels[key][1], spread)
    if ratios_default:
        value, spread = median_and_spread(ratios_default)
        figure.row("DBOS as it comes / resumable, per step", value, "x", spread)
    if ratios and ratios_at_once:
        readings = [
            (
                name_lone, ratios, "DBOS (WAL, FULL) / resumable, per step",
                f"DBOS {medians['wal_full']:,.0f} µs / resumable "
                f"{medians['resumable']:,.0f} µs per step",
            ),
            (
                name_at_once, ratios_at_once,
                f"resumable / DBOS (WAL, FULL), steps/s, {at_once} at once",
                f"resumable {medians['rate_resumable']:,.0f} / DBOS "
                f"{medians['rate_dbos']:,.0f} steps/s",
            ),
        ]  # fmt: skip
        for target, values, row, detail in readings:
            value, spread = median_and_spread(values)
            figure.targets.append(Target(target, value, LIMIT, "at least", detail, spread))
            figure.row(row, value, "x", spread)
    else:
        for each in (name_lone, name_at_once):
            figure.targets.append(Target(each, None, LIMIT, "at least", note=why))
    dbos_version = info.get("version", "not installed") if info else "not installed"
    figure.setup = (
        f"{steps} steps per workflow, {workflows} workflows per round, {rounds} rounds; "
        f"resumable {resumable.__version__}, DBOS {dbos_version}, Python "
        f"{platform.python_version()}"
    )
    print(figure.setup)
    for row in figure.rows:
        print(f"  {row['what']}: {row['value']:,.1f} {row['unit']} (±{row['spread'] * 100:.0f}%)")
    for t in figure.targets:
        shown = "not measured: " + t.note if t.value is None else f"{t.value:.2f}x ({t.detail})"
        print(f"  target {t.name} >= {t.limit:g}x: {shown}")
    write(figure, args.json)


if __name__ == "__main__":
    main()
