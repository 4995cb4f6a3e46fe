"""`resumable runs list|show` against real stores, and small refusals.

- Readers are not blocked by writers: while another process holds a write
  transaction, `runs list` and `runs show` answer at once (WAL readers).
- Listing reads only the columns it shows: rows with 20 MB checkpoints are
  listed quickly, in bounded memory.
- On a read-only mount, `runs list` and `runs show` work and create nothing.
- A read-only command on a path with no store says so and creates nothing.
- Stored ids and names with line breaks, escapes or bidirectional
  characters print escaped, one row per run.
- Bad store URLs (`%00`, a negative or nan timeout) and a damaged schema
  version are one-line errors, `sqlite:///:memory:` creates no file, and a
  wake time of 1e300 neither puts `rt.run` to sleep forever nor keeps a
  draining worker from exiting.

Every command runs in a subprocess; rows are written with sqlite3.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import resumable
from tests.rows import Box, clean_env, compile_row_jobs, make_box, resumable_cmd


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_row_jobs(tmp_path_factory.mktemp("row_jobs"))


@pytest.fixture
def box(programs: Path, tmp_path: Path) -> Box:
    return make_box(tmp_path, programs)


def _store_with_runs(box: Box) -> None:
    """A completed parent with its child, a pending run, and a run at checkpoint 1."""
    assert box.run_one("order", "bob", 5, run_id="order-1") == {"result": "receipt-bob-5"}
    box.run({"fn": "double", "args": [3], "run_id": "queued", "dispatch": True})
    box.crash("hold", 4, run_id="held", at="hold")


def _timed(box: Box, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = box.cli(*args)
    return time.monotonic() - started, proc


# ------------------------------------------------------------------ readers and writers

HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE runs SET reason = 'uncommitted' WHERE run_id = 'queued'")
conn.execute("INSERT INTO runs (run_id, function, fingerprint, args, status, created_at, "
             "updated_at) VALUES ('uncommitted', 'x:y', '', x'', 'pending', 0, 0)")
print("holding", flush=True)
sys.stdin.read()  # until the test closes it
conn.execute("ROLLBACK")
"""


@contextlib.contextmanager
def _write_transaction(db: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        yield holder
        assert holder.poll() is None  # it held the transaction all along
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()


def test_runs_list_and_show_do_not_wait_for_a_writer(box: Box) -> None:
    _store_with_runs(box)
    with _write_transaction(box.db):
        for args in (
            ("runs", "list", "--store", box.url),
            ("runs", "list", "--all", "--json", "--store", box.url),
            ("runs", "show", "held", "--store", box.url),
            ("runs", "show", "order-1", "--json", "--store", box.url),
        ):
            elapsed, proc = _timed(box, *args)
            assert proc.returncode == 0, proc.stderr
            assert elapsed < 3.0, (args, elapsed)  # a waiting reader took 30 s, then failed
            assert "uncommitted" not in proc.stdout  # what is committed, only
        elapsed, proc = _timed(box, "runs", "list", "--store", box.url)
    rows = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()[1:]}
    assert rows == {"order-1": "completed", "queued": "pending", "held": "running"}


# ------------------------------------------------------------------ big rows

#: The CLI in this process: its exit status, time and peak memory (VmHWM:
#: ru_maxrss would include the test process this one was forked from).
MEASURED = """
import json, sys, time
from resumable.cli import main
started = time.monotonic()
status = main(sys.argv[1:])
seconds = time.monotonic() - started
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(json.dumps({"status": status, "seconds": seconds, "peak_kib": peak}), file=sys.stderr)
"""


def _measured(box: Box, *args: str) -> tuple[dict[str, float], str]:
    proc = subprocess.run(
        [sys.executable, "-c", MEASURED, *args],
        env=box.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    stats = json.loads(proc.stderr.splitlines()[-1])
    assert stats["status"] == 0, proc.stderr
    return stats, proc.stdout


def test_runs_list_reads_no_checkpoint(box: Box) -> None:
    box.run(
        *({"fn": "double", "args": [i], "run_id": f"big-{i}", "dispatch": True} for i in range(8))
    )
    small, _ = _measured(box, "runs", "list", "--store", box.url)
    size = 20 * 1024 * 1024
    box.sql(
        "UPDATE runs SET checkpoint = zeroblob(?), result = zeroblob(?), error = zeroblob(?)",
        (size, 1024, 1024),
    )
    assert box.sql("SELECT sum(length(checkpoint)) FROM runs") == [(8 * size,)]
    expected = sorted(f"big-{i}" for i in range(8))
    for args in (["--all"], ["--json"]):
        big, out = _measured(box, "runs", "list", *args, "--store", box.url)
        if args == ["--json"]:
            assert sorted(r["run_id"] for r in json.loads(out)) == expected
        else:
            assert sorted(line.split()[0] for line in out.splitlines()[1:]) == expected
        # Reading the checkpoints would hold at least 160 MB.
        assert big["peak_kib"] - small["peak_kib"] < 40 * 1024, (small, big)
        assert big["seconds"] < 3.0, big


# ------------------------------------------------------------------ a read-only mount


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a read-only bind mount needs root")
    mount = folder.with_name(folder.name + "-ro")
    mount.mkdir()
    done = subprocess.run(["mount", "--bind", str(folder), str(mount)], capture_output=True)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"mount --bind is not permitted here: {done.stderr.decode().strip()}")
    try:
        remount = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(mount)], capture_output=True
        )
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.decode().strip()}")
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
        mount.rmdir()


@pytest.mark.parametrize("state", ["closed", "killed-writer", "log-without-shm"])
def test_runs_list_and_show_on_a_read_only_mount(box: Box, tmp_path: Path, state: str) -> None:
    store = tmp_path / "store"
    store.mkdir()
    box.db = store / "state.db"
    _store_with_runs(box)
    box.sql("SELECT count(*) FROM runs")  # the last connection to close empties the log
    assert "state.db-wal" not in os.listdir(store)
    if state != "closed":  # a log with a committed write, and its -shm
        script = (
            "import os, signal, sqlite3, sys\n"
            "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "conn.execute('PRAGMA wal_autocheckpoint=0')\n"
            "conn.execute(\"UPDATE runs SET reason = 'from the wal' WHERE run_id = 'queued'\")\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n"
        )
        subprocess.run([sys.executable, "-c", script, str(box.db)], check=False)
        assert (store / "state.db-wal").stat().st_size > 0
    if state == "log-without-shm":  # copied without it: the log cannot be read
        (store / "state.db-shm").unlink()
    before = sorted(os.listdir(store))
    with _read_only(store) as mount:
        url = f"sqlite:///{mount / 'state.db'}"
        listing = resumable_cmd("runs", "list", "--all", "--store", url, env=box.env())
        assert listing.returncode == 0, listing.stderr
        rows = {line.split()[0]: line.split()[1] for line in listing.stdout.splitlines()[1:]}
        assert rows == {
            "order-1": "completed",
            "order-1/1.0": "completed",
            "queued": "pending",
            "held": "running",
        }
        if state == "killed-writer":
            assert "from the wal" in listing.stdout
        if state == "log-without-shm":  # the rows as of the last checkpoint, and a warning
            assert "from the wal" not in listing.stdout
            assert "cannot be read without a -shm file" in listing.stderr
        shown = resumable_cmd("runs", "show", "held", "--store", url, env=box.env())
        assert shown.returncode == 0, shown.stderr
        assert "checkpoint #1" in shown.stdout and "data = [4, 4]" in shown.stdout
        as_json = resumable_cmd("runs", "show", "order-1", "--json", "--store", url, env=box.env())
        assert as_json.returncode == 0, as_json.stderr
        assert json.loads(as_json.stdout)["children"][0]["run_id"] == "order-1/1.0"
        # Writing is refused in one line.
        retry = resumable_cmd("runs", "retry", "held", "--store", url, env=box.env())
        assert retry.returncode == 1 and "Traceback" not in retry.stderr
    assert sorted(os.listdir(store)) == before  # nothing created


# ------------------------------------------------------------------ no store there


@pytest.mark.parametrize(
    "command",
    [["list"], ["list", "--json"], ["show", "r-1"], ["show", "r-1", "--json"], ["retry", "r-1"]],
)
def test_a_command_on_a_path_without_a_store_says_so_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    for path in (tmp_path / "missing" / "state.db", tmp_path / "state.db"):
        proc = resumable_cmd("runs", *command, "--store", f"sqlite:///{path}", env=clean_env())
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "no store at" in proc.stderr and str(path) in proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""
        assert sorted(os.listdir(tmp_path)) == []


# ------------------------------------------------------------------ stored text, escaped


HOSTILE_IDS = ["two\nlines", "evil\u202etxt.exe", "clear\x1b[2Jscreen", "bell\x07", "tab\there"]


def test_stored_ids_with_control_or_bidi_characters_print_escaped(box: Box) -> None:
    box.run({"fn": "double", "args": [1], "run_id": "plain", "dispatch": True})
    for run_id in HOSTILE_IDS:  # an older resumable stored any id
        box.copy_row("plain", run_id)
    box.copy_row("plain", "named", function="mod:fn\nFAKE  completed")
    proc = box.cli("runs", "list", "--store", box.url)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 + 2 + len(HOSTILE_IDS)  # one line per run
    assert all(line.isprintable() for line in lines)
    ids = {line.split("  ")[0].strip() for line in lines[1:]}
    assert ids == {
        "plain",
        "named",
        r"two\nlines",
        r"evil\u202etxt.exe",
        r"clear\x1b[2Jscreen",
        r"bell\x07",
        r"tab\there",
    }
    assert r"mod:fn\nFAKE  completed" in proc.stdout
    for run_id in HOSTILE_IDS:
        shown = box.cli("runs", "show", run_id, "--store", box.url)
        assert shown.returncode == 0, shown.stderr
        assert all(line.isprintable() for line in shown.stdout.splitlines())
        assert shown.stdout.splitlines()[0].startswith("run       ")


# ------------------------------------------------------------------ small refusals


def test_an_in_memory_sqlite_store_creates_no_file(box: Box, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "import sys, resumable\n"
        f"sys.path.insert(0, {str(box.programs)!r})\n"
        "import row_jobs\n"
        "rt = resumable.Runtime('sqlite:///:memory:')\n"
        "print(rt.run(row_jobs.double, 21, run_id='m-1'), rt.status('m-1'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=work,
        env=box.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["42", "completed"]
    assert os.listdir(work) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("a%00b.db", "NUL"),
        ("x.db?timeout=-1", "timeout must be seconds"),
        ("x.db?timeout=nan", "timeout must be seconds"),
        ("x.db?timeout=inf", "timeout must be seconds"),
        ("x.db?timeout=abc", "timeout must be seconds"),
        ("x.db?synchronous=sometimes", "synchronous must be"),
    ],
)
def test_bad_store_urls_are_one_line_errors(tmp_path: Path, query: str, message: str) -> None:
    url = f"sqlite:///{tmp_path}/{query}"
    for args in (("runs", "list"), ("worker", "--drain")):
        proc = resumable_cmd(*args, "--store", url, env=clean_env(), cwd=tmp_path)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr, proc.stderr
        assert message in proc.stderr.strip().splitlines()[-1]
    code = f"import resumable\ntry:\n    resumable.Runtime({url!r})\nexcept resumable.StoreError as e:\n    print('refused', e)\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, check=False
    )
    assert proc.stdout.startswith("refused") and message in proc.stdout, proc.stdout + proc.stderr
    assert sorted(os.listdir(tmp_path)) == []


def test_a_damaged_schema_version_is_a_clear_error(box: Box) -> None:
    _store_with_runs(box)
    box.sql("UPDATE resumable_meta SET value = 'abc' WHERE key = 'schema_version'")
    for args in (("runs", "list"), ("runs", "show", "held"), ("worker", "--drain")):
        proc = box.cli(*args, "--store", box.url)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert "schema version is 'abc'" in proc.stderr.strip().splitlines()[-1]
    outcome = box.run_one("double", 1, run_id="d-1")
    assert outcome["error"] == "StoreError" and "schema version is 'abc'" in outcome["message"]
    assert box.sql("SELECT value FROM resumable_meta WHERE key = 'schema_version'") == [("abc",)]


def test_a_wake_time_of_1e300_is_refused_not_slept_on(box: Box) -> None:
    box.crash("hold", 5, run_id="far", at="hold")
    box.copy_row("far", "far-worker")
    box.sql("UPDATE runs SET status = 'waiting', wake_at = 1e300")
    started = time.monotonic()
    _, outcomes = box.run({"fn": "hold", "args": [5], "run_id": "far"})
    assert time.monotonic() - started < 10
    assert outcomes and outcomes[0].get("error") == "CheckpointError", outcomes
    assert "wake_at" in outcomes[0]["message"]
    assert box.status("far") == "blocked"

    # A draining worker blocks it too, and exits.
    started = time.monotonic()
    proc = box.worker()
    assert time.monotonic() - started < 10
    assert box.status("far-worker") == "blocked"
    assert "run far-worker: blocked" in proc.stdout
    assert box.effects() == []


@pytest.mark.parametrize(
    "options",
    [
        {"initial_delay": 1e300, "max_delay": 1e300},
        {"initial_delay": float("inf"), "max_delay": float("inf")},
        {"initial_delay": float("nan")},
        {"max_delay": float("nan")},
        {"initial_delay": 0.0, "backoff": float("inf")},
        {"jitter": float("nan")},
    ],
)
def test_a_retry_delay_that_cannot_be_waited_for_is_refused(options: dict[str, float]) -> None:
    # (a wake time of 1e300 from such a policy put rt.run to sleep forever;
    # a nan one is stored as NULL, and the run waited forever)
    with pytest.raises(ValueError, match=r"^Retry: "):
        resumable.Retry(**options)


def test_a_huge_backoff_is_the_longest_delay() -> None:
    policy = resumable.Retry(max_attempts=2000, initial_delay=1.0, backoff=10.0, max_delay=30.0)
    assert policy.delay(1000, random.Random(0)) <= 33.0
