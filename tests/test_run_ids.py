"""Run ids, child matching, and stores written by an older resumable.

- A run id a user passes is 1 to 200 printable characters with no "/" and
  no control, line-break or bidirectional character; anything else is a
  ValueError from `rt.run`, `rt.call` and `fn.dispatch`, before anything is
  stored. So no user id is shaped like a child id (`<parent>/<step>.<i>`):
  a call can never be handed another run's child.
- A child is matched by its parent, its function and a digest of its
  arguments: a stored child that is another call blocks the parent (never
  adopted), and a set argument, whose order differs between processes, is
  not a mismatch.
- tests/store_samples/schema1_checkout.db was written by the checkout example
  of resumable 0.1 (schema 1): opened now it is migrated to the current schema with
  every row intact, its runs resume without repeating a step, and
  `resumable runs list` reads it read-only without migrating it.

Runs are driven in subprocesses (tests/crash_programs/row_runner.py) on real
SQLite files, and rows are changed with sqlite3.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import resumable
from resumable import Runtime
from resumable.store.migrations import SCHEMA_VERSION
from tests.compiled import import_file
from tests.rows import Box, clean_env, compile_row_jobs, make_box, resumable_cmd

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "tests" / "store_samples" / "schema1_checkout.db"


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_row_jobs(tmp_path_factory.mktemp("row_jobs"))


@pytest.fixture(scope="module")
def jobs(programs: Path) -> Iterator[ModuleType]:
    yield import_file(programs / "row_jobs.py", "row_jobs")
    sys.modules.pop("row_jobs", None)


@pytest.fixture
def box(programs: Path, tmp_path: Path) -> Box:
    return make_box(tmp_path, programs)


# ------------------------------------------------------------------ what an id may be

BAD_IDS = [
    pytest.param("", id="empty"),
    pytest.param("order-7/1.0", id="child-shaped"),
    pytest.param("a/b", id="slash"),
    pytest.param("x" * 201, id="201-chars"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\rb", id="carriage-return"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("tab\there", id="tab"),
    pytest.param("\x1b[31mred", id="escape"),
    pytest.param("a\x85b", id="next-line"),
    pytest.param("a\u2028b", id="line-separator"),
    pytest.param("invoice\u202etxt.exe", id="right-to-left-override"),
    pytest.param("a\u2066b\u2069", id="left-to-right-isolate"),
    pytest.param("a\u200fb", id="right-to-left-mark"),
    pytest.param("a\u061cb", id="arabic-letter-mark"),
    pytest.param("\ud800", id="lone-surrogate"),
]

GOOD_IDS = ["x" * 200, "order-7:1.0", "ordre été ü", "注文-7", "a.b-c_d", "🙂"]


@pytest.mark.parametrize("run_id", BAD_IDS)
def test_a_bad_run_id_is_a_value_error_before_anything_is_stored(
    jobs: ModuleType, box: Box, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBS_LOG", str(box.log))
    resumable.configure(store=box.url)
    rt = Runtime(box.url)
    try:
        with pytest.raises(ValueError, match="run id"):
            rt.run(jobs.pay, "alice", 100, run_id=run_id)
        with pytest.raises(ValueError, match="run id"):
            jobs.pay.dispatch("alice", 100, run_id=run_id)
        with pytest.raises(ValueError, match="run id"):
            rt.dispatch(jobs.pay, "alice", 100, run_id=run_id)
    finally:
        rt.close()
        resumable.configure()
    assert box.sql("SELECT run_id FROM runs") == []
    assert box.effects() == []


@pytest.mark.parametrize("run_id", [7, b"order-7", ("order", 7)])
def test_a_run_id_that_is_not_a_str_is_a_type_error(
    jobs: ModuleType, box: Box, run_id: object
) -> None:
    with Runtime(box.url) as rt, pytest.raises(TypeError, match="a run id is a str"):
        rt.run(jobs.pay, "alice", 100, run_id=run_id)  # type: ignore[arg-type]
    assert box.sql("SELECT run_id FROM runs") == []


def test_good_run_ids_are_stored_and_listed_as_they_are(jobs: ModuleType, box: Box) -> None:
    with Runtime(box.url) as rt:
        for i, run_id in enumerate(GOOD_IDS):
            assert rt.dispatch(jobs.double, i, run_id=run_id) == run_id
    assert sorted(r[0] for r in box.sql("SELECT run_id FROM runs")) == sorted(GOOD_IDS)
    listing = box.cli("runs", "list", "--store", box.url)
    assert listing.returncode == 0, listing.stderr
    listed = {line.split("  ")[0].strip() for line in listing.stdout.splitlines()[1:]}
    assert listed == set(GOOD_IDS)


@pytest.mark.parametrize("run_id", ["", "x" * 5000, "a\nb", "evil\u202etxt", "a\x1b[2Jb"])
@pytest.mark.parametrize("command", ["show", "retry"])
def test_the_cli_answers_a_bad_run_id_with_one_escaped_line(
    box: Box, run_id: str, command: str
) -> None:
    with Runtime(box.url):
        pass  # an empty store
    proc = box.cli("runs", command, run_id, "--store", box.url)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    problem = proc.stderr.splitlines()[-1]
    assert problem.startswith("resumable: no run ")
    assert problem.isprintable() and not any(c in problem for c in "\u202e\x1b")
    assert proc.stdout == ""


# ------------------------------------------------------- no call is handed another run's child


def test_a_child_shaped_run_id_is_refused_and_never_returns_another_runs_result(
    box: Box,
) -> None:
    # Bob's order made the child run order-7/1.0: pay("bob", 5), completed.
    assert box.run_one("order", "bob", 5, run_id="order-7") == {"result": "receipt-bob-5"}
    assert box.status("order-7/1.0") == "completed"
    assert box.effects() == ["charge bob 5"]
    before = box.row("order-7/1.0")

    # Alice's payment under that id would be Bob's receipt, and no charge.
    status, outcomes = box.run(
        {"fn": "pay", "args": ["alice", 100], "run_id": "order-7/1.0"},
        {"fn": "pay", "args": ["alice", 100], "run_id": "order-7/1.0", "dispatch": True},
    )
    assert status == 0
    for outcome in outcomes:
        assert outcome.get("error") == "ValueError", outcome
        assert "'/'" in outcome["message"]
    assert box.row("order-7/1.0") == before  # untouched: still Bob's
    assert box.effects() == ["charge bob 5"]

    # With an id of her own, Alice is charged, once.
    assert box.run_one("pay", "alice", 100, run_id="alice-100") == {"result": "receipt-alice-100"}
    assert box.run_one("pay", "alice", 100, run_id="alice-100") == {"result": "receipt-alice-100"}
    assert box.effects() == ["charge bob 5", "charge alice 100"]


def test_an_empty_run_id_is_refused_instead_of_making_a_new_run_each_time(box: Box) -> None:
    call = {"fn": "pay", "args": ["carol", 10], "run_id": ""}
    status, outcomes = box.run(call, call, {**call, "dispatch": True})
    assert status == 0
    assert [o.get("error") for o in outcomes] == ["ValueError"] * 3, outcomes
    assert "cannot be empty" in outcomes[0]["message"]
    assert box.effects() == []  # two calls used to make two charges
    assert box.sql("SELECT count(*) FROM runs") == [(0,)]


# --------------------------------------------------- a stored child must be the same call


def _mismatched_child(box: Box, kind: str) -> None:
    """Leave run `p` (order("victim", 50)) in its first step, its child p/1.0
    started; then replace p/1.0 by a child that is another call."""
    if kind == "arguments":  # pay("mallory", 1), of another parent
        assert box.run_one("order", "mallory", 1, run_id="other") == {"result": "receipt-mallory-1"}
    elif kind == "function":  # refund("victim", 50)
        assert box.run_one("refund", "victim", 50, run_id="refund-1") == {
            "result": "refund-victim-50"
        }
    box.crash("order", "victim", 50, run_id="p", at="pay victim")
    assert box.status("p") == "running" and box.status("p/1.0") == "running"
    if kind == "digest":
        box.sql("UPDATE runs SET args_digest = 'sha256:0123456789abcdef' WHERE run_id = 'p/1.0'")
        return
    source = "other/1.0" if kind == "arguments" else "refund-1"
    box.sql("DELETE FROM runs WHERE run_id = 'p/1.0'")
    box.copy_row(source, "p/1.0", parent="p")


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("arguments", "NondeterminismError"),
        ("digest", "NondeterminismError"),
        ("function", "VersionMismatch"),
    ],
)
def test_a_stored_child_that_is_another_call_blocks_its_parent(
    box: Box, kind: str, error: str
) -> None:
    _mismatched_child(box, kind)
    effects = box.effects()
    stored_child = box.row("p/1.0")

    outcome = box.run_one("order", "victim", 50, run_id="p")
    assert outcome.get("error") == error, outcome
    assert "'p/1.0'" in outcome["message"]
    assert ("now calls" if kind == "function" else "other arguments") in outcome["message"]
    assert box.status("p") == "blocked"
    assert "p/1.0" in box.row("p")["reason"]
    # Nothing ran: not the victim's charge, not the stored child again.
    assert box.effects() == effects
    assert box.row("p/1.0") == stored_child

    # A worker does the same (and goes on: it exits normally).
    box.sql("UPDATE runs SET status = 'running' WHERE run_id = 'p'")
    proc = box.worker()
    assert box.status("p") == "blocked"
    assert "run p: blocked" in proc.stdout and "p/1.0" in proc.stdout
    assert box.effects() == effects


def _set_order(seed: str, names: list[str]) -> list[str]:
    """The order of the set tag_flow builds, in a process with this hash seed."""
    code = f"import json; print(json.dumps(list({{n.upper() for n in {names!r}}})))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean_env(), "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    order: list[str] = json.loads(out)
    return order


def test_a_set_argument_is_the_same_call_in_a_process_with_another_hash_seed(box: Box) -> None:
    names = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "ibis", "jay"]
    first = _set_order("1", names)
    other = next(s for s in map(str, range(2, 40)) if _set_order(s, names) != first)

    # The parent is killed inside the child, which it started with the set.
    box.crash("tag_flow", names, run_id="tags", at="count_tags", PYTHONHASHSEED="1")
    assert box.status("tags") == "running" and box.status("tags/1.0") == "running"

    outcome = box.run_one("tag_flow", names, run_id="tags", PYTHONHASHSEED=other)
    assert outcome == {"result": len(names)}
    assert box.status("tags") == "completed"
    assert box.effects() == ["count " + ",".join(sorted(n.upper() for n in names))]


# ------------------------------------------------------------------ an older store


def _old_checkout(tmp_path: Path) -> tuple[Path, Path]:
    """The checkout example compiled in a folder of its own, with a copy of the
    schema-1 sample as its default store; (example folder, database)."""
    folder = tmp_path / "examples"
    shutil.copytree(REPO / "examples", folder, ignore=shutil.ignore_patterns("__resumable__"))
    compile_checkout = resumable_cmd("compile", str(folder), env=clean_env())
    assert compile_checkout.returncode == 0, compile_checkout.stderr
    db = folder / ".resumable" / "state.db"
    db.parent.mkdir()
    shutil.copy(SAMPLE, db)
    return folder, db


def _rows(db: Path) -> dict[str, tuple[object, ...]]:
    """The columns of schema 1, by run id."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT run_id, function, fingerprint, args, status, checkpoint, seq, line, source, "
            "attempt, attempts, result, error, reason, parent, created_at, updated_at, wake_at, "
            "owner FROM runs"
        ).fetchall()
    finally:
        conn.close()
    return {row[0]: row for row in rows}


def _schema(db: Path) -> tuple[str, set[str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        version = conn.execute(
            "SELECT value FROM resumable_meta WHERE key = 'schema_version'"
        ).fetchone()[0]
        columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    finally:
        conn.close()
    return version, columns


def _python(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_store_of_schema_1_is_migrated_and_its_runs_go_on(tmp_path: Path) -> None:
    folder, db = _old_checkout(tmp_path)
    url = f"sqlite:///{db}"
    before = _rows(db)
    assert _schema(db)[0] == "1"
    assert {"generation", "args_digest"}.isdisjoint(_schema(db)[1])
    assert before["order-456"][4] == "running" and before["order-456"][6] == 2
    assert before["order-456/1.0"][4] == "completed"  # the card was charged
    assert before["order-789"][4] == "pending"

    # Opened by the Runtime: migrated to today's schema, every row as it was.
    opened = _python(folder, "-c", f"import resumable; resumable.Runtime({url!r}).close()")
    assert opened.returncode == 0, opened.stderr
    version, columns = _schema(db)
    assert version == str(SCHEMA_VERSION)
    assert {"generation", "args_digest"} <= columns
    assert _rows(db) == before
    tables = sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert {"operations", "events"} <= {name for (name,) in tables}
    listing = resumable_cmd("runs", "list", "--all", "--json", "--store", url, env=clean_env())
    assert listing.returncode == 0, listing.stderr
    assert "order-456/2.0" in listing.stdout and '"status": "damaged"' not in listing.stdout

    # order-456 resumes at checkpoint 2 with today's example: the email is
    # sent, the card is not charged again.
    resumed = _python(folder, "checkout.py")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "run order-456 (running)" in resumed.stdout
    assert "charging" not in resumed.stdout
    assert "emailing user_123: order order-456 paid (receipt-user_123)" in resumed.stdout
    assert "checkout returned 'receipt-user_123'" in resumed.stdout
    after = _rows(db)
    assert after["order-456"][4] == "completed"
    assert after["order-456/1.0"] == before["order-456/1.0"]

    # order-468a45 had completed: its stored result, nothing run again.
    again = _python(
        folder,
        "-c",
        "import resumable, checkout\n"
        f"rt = resumable.Runtime({url!r})\n"
        "print(repr(rt.run(checkout.checkout, 'user_123', 'order-468a45', run_id='order-468a45')))",
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines() == ["'receipt-user_123'"]
    assert _rows(db)["order-468a45"] == before["order-468a45"]

    # order-789 was dispatched: a worker of today's example drives it.
    worker = resumable_cmd(
        "worker", "--store", url, "--module", str(folder / "checkout.py"), "--drain",
        env=clean_env(), cwd=folder,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert worker.stdout.count("charging the card of user_9") == 1
    assert "run order-789: completed" in worker.stdout
    final = _rows(db)
    assert {run_id: row[4] for run_id, row in final.items() if "/" not in run_id} == {
        "order-468a45": "completed",
        "order-456": "completed",
        "order-789": "completed",
    }
    assert _schema(db)[0] == str(SCHEMA_VERSION)


def test_runs_list_reads_a_store_of_schema_1_without_migrating_it(tmp_path: Path) -> None:
    db = tmp_path / "old" / "state.db"
    db.parent.mkdir()
    shutil.copy(SAMPLE, db)
    before = _rows(db)
    url = f"sqlite:///{db}"
    listing = resumable_cmd("runs", "list", "--all", "--store", url, env=clean_env())
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line.split()[1] for line in listing.stdout.splitlines()[1:]}
    assert rows == {
        "order-468a45": "completed",
        "order-468a45/1.0": "completed",
        "order-468a45/2.0": "completed",
        "order-468a45/3.0": "completed",
        "order-456": "running",
        "order-456/1.0": "completed",
        "order-456/2.0": "running",
        "order-789": "pending",
    }
    shown = resumable_cmd("runs", "show", "order-456", "--store", url, env=clean_env())
    assert shown.returncode == 0, shown.stderr
    assert "checkpoint #2" in shown.stdout and "receipt_id = 'receipt-user_123'" in shown.stdout
    assert "order-456/1.0  completed  checkout:charge_credit_card" in shown.stdout
    assert _schema(db)[0] == "1"
    assert {"generation", "args_digest"}.isdisjoint(_schema(db)[1])
    assert _rows(db) == before
