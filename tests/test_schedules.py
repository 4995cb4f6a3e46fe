"""Durable schedules: `rt.schedule(fn, *args, cron=... | every=...)`.

    upsert       the id comes from the function, the digest of its arguments
                 and the timing: scheduling the same thing again changes
                 nothing; anything else is another schedule
    firing       the first firing is after creation; each firing is a run
                 `<schedule id>@<UTC time>` created by a worker; of the
                 firings missed, only the latest runs (no backlog); a stale
                 view of a schedule fires nothing
    bad input    both or neither of cron/every, bad cron, bad intervals, a
                 function that is not decorated
    CLI          `resumable schedules list|delete`, on a store of today's
                 schema and of schema 3 (read as it is)
    processes    a real worker fires an every=1 s schedule; killed and
                 restarted after a gap, the latest missed firing runs once;
                 two workers together never create a firing twice

The in-process tests use a clock that does not move by itself (the runtime
and the worker read time from `Runtime(clock=...)`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import json
import re
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import resumable
from resumable import Runtime
from resumable.cli import main
from resumable.schedules import firing, firing_run_id
from resumable.store.migrations import SCHEMA_VERSION
from resumable.worker import work
from tests.compiled import compile_and_import
from tests.procs import clean_env, compile_module, python, rows, start_worker, stop, wait_until
from tests.stores import store_url

MODULE = "schedule_cases"
SOURCE = """
import resumable

LOG = []


@resumable.function
async def report(kind, *, to="ops"):
    LOG.append((kind, to))
    return f"{kind} for {to}"


async def undecorated():
    return None
"""

#: 2025-01-01 12:03:20 UTC
T0 = dt.datetime(2025, 1, 1, 12, 3, 20, tzinfo=dt.UTC).timestamp()


def utc(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


class Clock:
    """Time stands still unless a test moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("schedules")
    yield compile_and_import(folder / f"{MODULE}.py", MODULE, SOURCE)
    sys.modules.pop(MODULE, None)


@pytest.fixture
def m(cases: ModuleType) -> ModuleType:
    cases.LOG.clear()
    return cases


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def rt(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Runtime]:
    url = store_url(request, request.param, tmp_path)
    with Runtime(url, clock=clock) as runtime:
        yield runtime


def drain(rt: Runtime) -> list[str]:
    """Run a draining worker in this process; its log lines."""
    lines: list[str] = []
    asyncio.run(work(rt, drain=True, poll=0.01, log=lines.append))
    return lines


def top_runs(rt: Runtime) -> dict[str, str]:
    return {r.run_id: r.status for r in rt.store.list_runs(top_only=True)}


# ------------------------------------------------------------------------ upsert


def test_scheduling_again_changes_nothing_and_returns_the_same_id(
    m: ModuleType, rt: Runtime, clock: Clock
) -> None:
    first = rt.schedule(m.report, "daily", cron="*/5 * * * *")
    (stored,) = rt.store.schedules()
    clock.now += 3600  # the app starts again an hour later
    # The same call, the same bound arguments written otherwise, the same
    # expression spaced otherwise: the same schedule, untouched.
    assert rt.schedule(m.report, "daily", cron="*/5 * * * *") == first
    assert rt.schedule(m.report, kind="daily", to="ops", cron=" */5  *  * * * ") == first
    assert rt.store.schedules() == [stored]
    assert stored.schedule_id == first and stored.function == f"{MODULE}:report"
    assert stored.created_at == T0 and stored.last_fired is None
    assert stored.next_at == utc("2025-01-01T12:05:00")  # the first cron time after creation

    # Other arguments, another timing: other schedules.
    others = {
        rt.schedule(m.report, "weekly", cron="*/5 * * * *"),
        rt.schedule(m.report, "daily", to="dev", cron="*/5 * * * *"),
        rt.schedule(m.report, "daily", cron="*/10 * * * *"),
        rt.schedule(m.report, "daily", every=dt.timedelta(minutes=5)),
        rt.schedule(m.report, "daily", every=300),  # the same as the one above
    }
    assert len(others) == 4 and first not in others
    assert len(rt.store.schedules()) == 5
    # Every firing of these is a valid run id.
    for schedule_id in (first, *others):
        resumable.ids.check_run_id(firing_run_id(schedule_id, T0 + 0.25))


def test_the_first_every_firing_is_one_interval_after_creation(
    m: ModuleType, rt: Runtime, clock: Clock
) -> None:
    clock.now = T0 + 0.4
    schedule_id = rt.schedule(m.report, "x", every=dt.timedelta(seconds=90))
    (stored,) = rt.store.schedules()
    assert stored.every == 90.0 and stored.cron is None
    # Counted from the whole second at or after creation: never before it.
    assert stored.next_at == T0 + 1 + 90
    assert drain(rt) == [] and top_runs(rt) == {}
    clock.now = T0 + 90.9
    assert drain(rt) == [] and top_runs(rt) == {}  # not due yet
    clock.now = T0 + 91
    drain(rt)
    assert top_runs(rt) == {f"{schedule_id}@2025-01-01T12:04:51Z": "completed"}


# ------------------------------------------------------------------------ firing


def test_each_firing_is_a_run_and_only_the_latest_missed_one_runs(
    m: ModuleType, rt: Runtime, clock: Clock
) -> None:
    schedule_id = rt.schedule(m.report, "daily", to="ann", cron="*/5 * * * *")
    assert drain(rt) == [] and top_runs(rt) == {}  # 12:03:20: nothing is due

    clock.now = utc("2025-01-01T12:05:00")
    lines = drain(rt)
    run_1205 = f"{schedule_id}@2025-01-01T12:05:00Z"
    assert f"schedule {schedule_id}: fired run {run_1205}" in lines
    assert top_runs(rt) == {run_1205: "completed"}
    assert rt.result(run_1205) == "daily for ann"
    assert m.LOG == [("daily", "ann")]

    # No worker ran from 12:05 to 13:02: eleven firings were missed; the
    # latest (13:00) runs, once.
    clock.now = utc("2025-01-01T13:02:59")
    drain(rt)
    run_1300 = f"{schedule_id}@2025-01-01T13:00:00Z"
    assert top_runs(rt) == {run_1205: "completed", run_1300: "completed"}
    assert m.LOG == [("daily", "ann")] * 2
    (stored,) = rt.store.schedules()
    assert stored.last_fired == utc("2025-01-01T13:00:00")
    assert stored.next_at == utc("2025-01-01T13:05:00")

    # Looking again at the same time fires nothing more.
    assert drain(rt) == []
    assert len(top_runs(rt)) == 2 and len(m.LOG) == 2


def test_every_schedules_skip_missed_firings_too(m: ModuleType, rt: Runtime, clock: Clock) -> None:
    schedule_id = rt.schedule(m.report, "x", every=60)  # created at 12:03:20
    clock.now = T0 + 60
    drain(rt)
    clock.now = T0 + 60 * 10 + 30  # nine more firings were due: the last one runs
    drain(rt)
    assert sorted(top_runs(rt)) == [
        f"{schedule_id}@2025-01-01T12:04:20Z",
        f"{schedule_id}@2025-01-01T12:13:20Z",
    ]
    assert rt.store.schedules()[0].next_at == T0 + 60 * 11


def test_a_firing_decided_on_a_stale_view_of_the_schedule_creates_nothing(
    m: ModuleType, rt: Runtime, clock: Clock
) -> None:
    """Two workers that read the schedule at the same time: the one whose
    firing commits second changes nothing (the last firing moved)."""
    rt.schedule(m.report, "x", every=60)
    clock.now = T0 + 130
    (seen,) = rt.store.due_schedules(clock.now)
    fire = firing(seen, m.report, clock.now)
    assert fire is not None
    fired_at, next_at, record = fire
    assert fired_at == T0 + 120 and next_at == T0 + 180
    assert rt.store.fire_schedule(seen, fired_at, next_at, record)
    # The second worker's view (last_fired None), a second later.
    later = firing(seen, m.report, clock.now + 1)
    assert later is not None
    assert not rt.store.fire_schedule(seen, *later)
    assert list(top_runs(rt)) == [record.run_id]
    assert rt.store.schedules()[0].last_fired == fired_at


def test_a_worker_fires_only_schedules_of_functions_it_imports(
    m: ModuleType, rt: Runtime, clock: Clock
) -> None:
    schedule_id = rt.schedule(m.report, "x", every=60)
    (mine,) = rt.store.schedules()
    foreign = type(mine)(
        "elsewhere:job#0123456789ab", "elsewhere:job", mine.args, "", None, 60.0, T0, next_at=T0
    )
    assert rt.store.upsert_schedule(foreign)
    clock.now = T0 + 61
    lines = drain(rt)
    assert "schedule elsewhere:job#0123456789ab: elsewhere:job is not imported here; not fired" in (
        lines
    )
    assert list(top_runs(rt)) == [f"{schedule_id}@2025-01-01T12:04:20Z"]
    assert rt.store.get_schedule(foreign.schedule_id) == foreign  # left for another worker


def test_a_worker_with_a_long_poll_wakes_up_for_the_next_firing(
    m: ModuleType, tmp_path: Path
) -> None:
    """A worker waits `poll` seconds between looks, but never past the next
    firing of a schedule (here due 0.3 s after it starts, with poll=30)."""
    start, began = T0 + 0.7, time.monotonic()

    class Running(Clock):  # real time, from `start`
        def time(self) -> float:
            return start + time.monotonic() - began

    clock = Running()
    with Runtime(f"sqlite:///{tmp_path / 'runs.db'}", clock=clock) as rt:
        (made,) = [rt.store.get_schedule(rt.schedule(m.report, "x", every=60))]
        assert made is not None and made.next_at > start + 59
        # As if created a minute ago: its next firing is at T0 + 1.
        assert rt.store.delete_schedule(made.schedule_id)
        rt.store.upsert_schedule(dataclasses.replace(made, created_at=start - 60, next_at=T0 + 1))

        async def until_fired() -> float:
            stop = asyncio.Event()
            worker = asyncio.create_task(work(rt, poll=30, stop=stop, log=lambda _: None))
            while not top_runs(rt) and time.monotonic() < began + 10:
                await asyncio.sleep(0.02)
            stop.set()
            await worker
            return time.monotonic() - began

        assert asyncio.run(until_fired()) < 3
        assert list(top_runs(rt)) == [rt.store.schedules()[0].schedule_id + "@2025-01-01T12:03:21Z"]


def test_a_deleted_schedule_fires_no_more_and_its_runs_stay(
    m: ModuleType, rt: Runtime, clock: Clock
) -> None:
    schedule_id = rt.schedule(m.report, "x", every=60)
    clock.now = T0 + 61
    drain(rt)
    assert rt.store.delete_schedule(schedule_id)
    assert not rt.store.delete_schedule(schedule_id)
    clock.now = T0 + 3600
    assert drain(rt) == []
    assert len(top_runs(rt)) == 1 and rt.store.schedules() == []


def test_without_modules_a_worker_imports_the_schedules_module_from_its_source(
    m: ModuleType, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for runs: the source file the schedule recorded, if it is in the
    project (here: under the working directory)."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    compile_module(project, "found_jobs", SOURCE.replace("LOG = []", "LOG = ['found']"))
    with Runtime(f"sqlite:///{tmp_path / 'runs.db'}", clock=clock) as rt:
        rt.schedule(m.report, "x", every=60)
        (mine,) = rt.store.schedules()
        # The same schedule of a function of a module not imported yet.
        other = dataclasses.replace(
            mine,
            schedule_id="found_jobs:report#0123456789ab",
            function="found_jobs:report",
            source=str(project / "found_jobs.py"),
        )
        assert rt.store.delete_schedule(mine.schedule_id) and rt.store.upsert_schedule(other)
        assert "found_jobs" not in sys.modules
        clock.now = T0 + 61
        lines: list[str] = []
        try:
            asyncio.run(work(rt, drain=True, poll=0.01, log=lines.append, discover=True))
            assert sys.modules["found_jobs"].LOG == ["found", ("x", "ops")]
        finally:
            sys.modules.pop("found_jobs", None)
        assert "imported found_jobs from found_jobs.py" in lines
        assert top_runs(rt) == {f"{other.schedule_id}@2025-01-01T12:04:20Z": "completed"}


# --------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("timing", "error", "message"),
    [
        ({}, ValueError, "exactly one of cron='...' (a cron expression) and every=timedelta"),
        ({"cron": "* * * * *", "every": 60}, ValueError, "; both given"),
        ({"cron": "61 * * * *"}, ValueError, "'61 * * * *' is not a valid cron expression"),
        ({"cron": "every day"}, ValueError, "'every day' is not a valid cron expression"),
        ({"cron": ""}, ValueError, "'' is not a valid cron expression"),
        ({"cron": "* * * * * * *"}, ValueError, "'* * * * * * *' is not a valid cron expression"),
        ({"cron": "0 0 30 2 *"}, ValueError, "cron expression '0 0 30 2 *' never fires"),
        ({"cron": 5}, TypeError, "cron is a str such as '*/5 * * * *', not 5"),
        ({"every": 0}, ValueError, "every=0 is not a positive interval"),
        ({"every": -5}, ValueError, "every=-5 is not a positive interval"),
        ({"every": dt.timedelta(0)}, ValueError, "every=datetime.timedelta(0) is not a positive"),
        ({"every": float("nan")}, ValueError, "every=nan is not a positive interval"),
        ({"every": 0.5}, ValueError, "every=0.5 is 0.5 s; an interval is at least 1 s"),
        ({"every": "5m"}, TypeError, "every is a datetime.timedelta (or seconds), not '5m'"),
        ({"every": True}, TypeError, "every is a datetime.timedelta (or seconds), not True"),
    ],
)
def test_bad_timings_are_refused_naming_the_value(
    m: ModuleType, rt: Runtime, timing: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        rt.schedule(m.report, "x", **timing)
    assert message in str(info.value)
    assert rt.store.schedules() == []


def test_only_decorated_functions_with_fitting_arguments_are_scheduled(
    m: ModuleType, rt: Runtime
) -> None:
    with pytest.raises(TypeError, match=r"is not decorated with @resumable\.function"):
        rt.schedule(m.undecorated, cron="* * * * *")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"is not decorated with @resumable\.function"):
        rt.schedule(print, every=60)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'cc'"):
        rt.schedule(m.report, "x", cc="me", every=60)
    with pytest.raises(resumable.SerializationError, match="argument `kind`"):
        rt.schedule(m.report, lambda: 1, every=60)
    assert rt.store.schedules() == []


# ---------------------------------------------------------------- CLI and schema


@pytest.fixture
def db(m: ModuleType, tmp_path: Path, clock: Clock) -> Path:
    """A store with two schedules, one of which has fired."""
    path = tmp_path / "runs.db"
    with Runtime(f"sqlite:///{path}", clock=clock) as rt:
        rt.schedule(m.report, "daily", cron="0 6 * * *")
        rt.schedule(m.report, "x", every=dt.timedelta(minutes=5))
        clock.now = T0 + 301
        drain(rt)
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_schedules_list_shows_timing_and_firings(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{db}"
    code, out, _ = cli(capsys, "schedules", "list", "--store", url)
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == ["SCHEDULE", "FUNCTION", "WHEN", "(UTC)", "LAST", "FIRED", "NEXT"]
    assert len(lines) == 2
    cron = next(line for line in lines if "cron 0 6 * * *" in line)
    assert re.match(
        rf"{MODULE}:report#[0-9a-f]{{12}} +{MODULE}:report +cron 0 6 \* \* \* +- ", cron
    )
    assert cron.endswith("2025-01-02 06:00:00Z")  # never fired; next at 06:00 UTC
    every = next(line for line in lines if "every 5m" in line)
    assert "2025-01-01 12:08:20Z  2025-01-01 12:13:20Z" in every

    code, out, _ = cli(capsys, "schedules", "list", "--json", "--store", url)
    assert code == 0
    listed = {s["every_seconds"]: s for s in json.loads(out)}
    fired = listed[300.0]
    assert fired["cron"] is None and fired["last_fired"] == T0 + 300
    assert fired["last_run_id"] == f"{fired['schedule_id']}@2025-01-01T12:08:20Z"
    assert fired["next_at"] == T0 + 600 and fired["damaged"] is None
    assert listed[None]["cron"] == "0 6 * * *" and listed[None]["last_run_id"] is None


def test_schedules_delete(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{db}"
    code, out, _ = cli(capsys, "schedules", "list", "--json", "--store", url)
    doomed = json.loads(out)[0]["schedule_id"]
    code, out, _ = cli(capsys, "schedules", "delete", doomed, "--store", url)
    assert code == 0 and f"schedule {doomed} deleted" in out
    code, out, _ = cli(capsys, "schedules", "list", "--json", "--store", url)
    assert doomed not in {s["schedule_id"] for s in json.loads(out)} and len(json.loads(out)) == 1
    code, out, err = cli(capsys, "schedules", "delete", doomed, "--store", url)
    assert code == 1 and f"resumable: no schedule {doomed!r} in sqlite:///{db}" in err
    code, out, err = cli(capsys, "schedules", "delete", "bad\nid", "--store", url)
    assert code == 1 and "no schedule 'bad\\nid'" in err  # escaped, on one line


def test_schedules_commands_on_a_path_with_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'nothing.db'}"
    for args in (("list",), ("list", "--json"), ("delete", "some-id")):
        code, out, err = cli(capsys, "schedules", *args, "--store", url)
        assert code == 1 and out == ""
        assert f"there is no store at {tmp_path / 'nothing.db'}" in err
    assert not (tmp_path / "nothing.db").exists()  # nothing was created


#: What takes a store of schema version 5 back to version 4 (test_queues.py too).
QUEUES_UNDONE = (
    "DROP INDEX runs_dedup",
    "DROP INDEX runs_by_queue",
    "ALTER TABLE runs DROP COLUMN queue",
    "ALTER TABLE runs DROP COLUMN priority",
    "ALTER TABLE runs DROP COLUMN dedup_key",
    "DROP TABLE queues",
    "DROP TABLE queue_starts",
)


def downgrade(path: Path, version: int) -> None:
    """Make a store of today's schema look as resumable `version` left it."""
    with sqlite3.connect(path) as conn:
        for statement in QUEUES_UNDONE:  # version 5
            conn.execute(statement)
        conn.execute("DROP TABLE schedules")
        if version < 3:
            conn.execute("DROP TABLE operations")
            conn.execute("DROP TABLE events")
        conn.execute(
            "UPDATE resumable_meta SET value = ? WHERE key = 'schema_version'", (str(version),)
        )
    conn.close()


def schema(path: Path) -> tuple[str, set[str]]:
    conn = sqlite3.connect(path)
    try:
        (version,) = conn.execute(
            "SELECT value FROM resumable_meta WHERE key = 'schema_version'"
        ).fetchone()
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    return version, tables


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_store_is_listed_as_it_is_and_migrated_when_opened_to_write(
    m: ModuleType, tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str], version: int
) -> None:
    assert SCHEMA_VERSION == 6
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    with Runtime(url, clock=clock) as rt:
        rt.dispatch(m.report, "kept", run_id="kept")
    downgrade(path, version)
    assert "schedules" not in schema(path)[1]

    # Looking reads it as it is: no schedules, no migration.
    assert cli(capsys, "schedules", "list", "--store", url)[:2] == (0, "no schedules\n")
    assert cli(capsys, "schedules", "delete", "x", "--store", url)[0] == 1
    assert schema(path)[0] == str(version)

    with Runtime(url, clock=clock) as rt:
        assert schema(path)[0] == str(SCHEMA_VERSION)
        assert {"schedules", "operations", "events"} <= schema(path)[1]
        assert rt.status("kept") == "pending"
        schedule_id = rt.schedule(m.report, "x", every=60)
        clock.now += 61
        drain(rt)
        assert rt.status("kept") == "completed"
        assert any(r.startswith(f"{schedule_id}@") for r in top_runs(rt))


def test_a_damaged_schedule_row_is_listed_and_skipped(
    m: ModuleType, tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    with Runtime(url, clock=clock) as rt:
        good = rt.schedule(m.report, "good", every=60)
        bad = rt.schedule(m.report, "bad", every=60)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schedules SET every = 'soon' WHERE schedule_id = ?", (bad,))
    conn.close()
    clock.now += 3600
    with Runtime(url, clock=clock) as rt:
        lines = drain(rt)
        assert [line for line in lines if "damaged" in line] == [
            f"schedule {bad}: not fired: damaged: column 'every' holds 'soon'"
        ]
        assert {r.split("@")[0] for r in top_runs(rt)} == {good}
    code, out, _ = cli(capsys, "schedules", "list", "--store", url)
    assert code == 0 and "damaged: column 'every' holds 'soon'" in out


# ------------------------------------------------------------------ real workers

JOBS = """
import json
import os
import time

import resumable


@resumable.function
async def beat():
    with open(os.environ["BEATS"], "a") as f:
        f.write(json.dumps([time.time(), resumable.idempotency_key()]) + "\\n")
    return "beat"
"""


def test_real_workers_fire_each_firing_once_and_only_the_latest_missed(tmp_path: Path) -> None:
    compile_module(tmp_path, "beats", JOBS)
    db = tmp_path / "runs.db"
    env = clean_env(RESUMABLE_STORE=f"sqlite:///{db}", BEATS=str(tmp_path / "beats.log"))
    made = python(
        "import resumable, beats\nprint(resumable.Runtime().schedule(beats.beat, every=1))",
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    schedule_id = made.stdout.strip()

    def fired(status: str = "%") -> list[float]:
        """The firing times of the schedule's runs (of `status`), in order."""
        found = rows(db, "run_id LIKE ? AND status LIKE ?", f"{schedule_id}@%", status)
        return sorted(utc(r["run_id"].split("@")[1].rstrip("Z")) for r in found)

    def worker() -> Any:
        return start_worker("--module", "beats", "--poll", "0.05", cwd=tmp_path, env=env)

    first = worker()
    wait_until(lambda: len(fired("completed")) >= 2, "two firings run", proc=first)
    stop(first, kill=True)
    before = fired()
    # One a second (a worker starved of CPU for over a second may skip one).
    assert all(b - a >= 1 and (b - a) % 1 == 0 for a, b in itertools.pairwise(before))
    time.sleep(2.3)  # two firings or more are missed

    # Two workers at once: the latest missed firing runs once, then one a second.
    workers = [worker(), worker()]
    try:
        wait_until(
            lambda: len(fired("completed")) >= len(before) + 3,
            "three firings more run",
            proc=workers[0],
        )
    finally:
        outputs = [stop(w)[0] for w in workers]
    later = fired()[len(before) :]
    assert later[0] >= before[-1] + 2  # the missed firings in between never run
    assert all(b - a >= 1 and (b - a) % 1 == 0 for a, b in itertools.pairwise(later))

    # Each firing was created by one of the two workers, once, and run once.
    created = [
        line.split("fired run ")[1]
        for out in outputs
        for line in out.splitlines()
        if "fired run" in line
    ]
    assert sorted(created) == sorted(firing_run_id(schedule_id, t) for t in later)
    beats = [json.loads(line)[1] for line in (tmp_path / "beats.log").read_text().splitlines()]
    ran = [key.rsplit(":", 1)[0] for key in beats]
    completed = {firing_run_id(schedule_id, t) for t in fired("completed")}
    assert sorted(r for r in ran if r in completed and r in created) == sorted(
        completed & set(created)
    )
