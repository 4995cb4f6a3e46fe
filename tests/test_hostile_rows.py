"""Hostile stored state never runs code, and a damaged row affects only itself.

- Imported files: a worker without --module imports a run's module from the
  file its `source` column names only when that file (its real path) is
  under the project's roots: the working directory (never `/`) and
  `[tool.resumable] roots`. Any other file is not imported: the worker logs a
  line naming the run and leaves it pending for a worker that has its module.
- Bad text: a TEXT column that is not valid UTF-8 makes only its row
  damaged: `resumable runs list` and `show` show it as damaged, and a worker
  blocks it and drives every healthy run.
- Malformed checkpoints: a plain checkpoint nested 1,000 deep, a format-1
  checkpoint (unless the runtime opts in), a `seq` of 2**63-1 or 'abc': the
  run is blocked (not failed), nothing of it runs, the worker goes on, and
  `runs show` still shows it.

Everything runs in subprocesses (`python -m resumable`, row_runner.py) on
real SQLite files; rows are changed with sqlite3.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from resumable.codec import seal
from resumable_compiler.build import compile_file
from tests.rows import Box, clean_env, compile_row_jobs, make_box, resumable_cmd


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_row_jobs(tmp_path_factory.mktemp("row_jobs"))


@pytest.fixture
def box(programs: Path, tmp_path: Path) -> Box:
    return make_box(tmp_path, programs)


# ------------------------------------------------------------------ imported files

PAYLOAD = '''\
"""Planted outside the project: importing it leaves a marker file."""
import os

import resumable

if os.environ.get("PAYLOAD_MARKER"):
    with open(os.environ["PAYLOAD_MARKER"], "w") as f:
        f.write("imported")


@resumable.function
async def job(x: int) -> int:
    return x + 1
'''

APP = """\
import resumable


@resumable.function
async def double(x: int) -> int:
    return 2 * x
"""


def _write_module(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    result = compile_file(str(path))
    assert not result.errors, result.errors


def _dispatch(url: str, folder: Path, module: str, function: str, arg: int, run_id: str) -> None:
    code = (
        f"import resumable, {module}\n"
        f"resumable.configure(store={url!r})\n"
        f"{module}.{function}.dispatch({arg}, run_id={run_id!r})\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def _status(url: str, run_id: str) -> str:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return str(
            conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]
        )
    finally:
        conn.close()


@pytest.mark.parametrize("where", ["outside", "symlink-in-the-project", "worker-in-slash"])
def test_a_worker_never_imports_a_file_outside_the_project(tmp_path: Path, where: str) -> None:
    project, outside = tmp_path / "project", tmp_path / "outside"
    _write_module(outside / "payload.py", PAYLOAD)
    _write_module(project / "app.py", APP)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    marker = tmp_path / "marker"
    _dispatch(url, outside, "payload", "job", 1, "planted")
    _dispatch(url, project, "app", "double", 2, "own")
    source = str(outside / "payload.py")
    if where == "symlink-in-the-project":  # the row names a link in the project
        link = project / "payload.py"
        link.symlink_to(outside / "payload.py")
        (project / "__resumable__" / "payload.py").symlink_to(
            outside / "__resumable__" / "payload.py"
        )
        conn = sqlite3.connect(tmp_path / "state.db")
        conn.execute("UPDATE runs SET source = ? WHERE run_id = 'planted'", (str(link),))
        conn.commit()
        conn.close()
        source = str(link)
    cwd = Path("/") if where == "worker-in-slash" else project

    env = clean_env(PAYLOAD_MARKER=str(marker))
    worker = resumable_cmd("worker", "--store", url, "--drain", env=env, cwd=cwd)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert not marker.exists()
    refusal = [line for line in worker.stdout.splitlines() if line.startswith("run planted:")]
    assert refusal and "not importing" in refusal[0] and source in refusal[0], worker.stdout
    assert _status(url, "planted") == "pending"  # left for a worker that has its module
    if where == "worker-in-slash":
        assert _status(url, "own") == "pending"  # `/` is never a root: nothing is imported
        return
    assert _status(url, "own") == "completed"  # the project's own run is driven

    # Listed in [tool.resumable] roots, the folder is the project's.
    (project / "pyproject.toml").write_text('[tool.resumable]\nroots = ["../outside"]\n')
    worker = resumable_cmd("worker", "--store", url, "--drain", env=env, cwd=project)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert marker.read_text() == "imported"
    assert _status(url, "planted") == "completed"


# ------------------------------------------------------------------ bad text

BAD = "CAST(x'626164fffe' AS TEXT)"  # b"bad\xff\xfe": not UTF-8
SHOWN_BAD = r"bad\xff\xfe"

#: column -> the run whose column is damaged
DAMAGED = {
    "run_id": "d-run-id",
    "function": "d-function",
    "status": "d-status",
    "reason": "d-reason",
    "source": "d-source",
    "owner": "d-owner",
    "fingerprint": "d-fingerprint",
    "parent": "d-parent",
}


def test_text_that_is_not_utf8_damages_only_its_own_row(box: Box) -> None:
    runs = [{"fn": "double", "args": [i], "run_id": f"h{i}", "dispatch": True} for i in range(4)]
    runs += [
        {"fn": "double", "args": [10 + i], "run_id": run_id, "dispatch": True}
        for i, run_id in enumerate(DAMAGED.values())
    ]
    status, _ = box.run(*runs)
    assert status == 0
    for column, run_id in DAMAGED.items():
        box.sql(f"UPDATE runs SET {column} = {BAD} WHERE run_id = ?", (run_id,))
    box.sql(f"UPDATE runs SET reason = {BAD} WHERE run_id = 'h3'")  # healthy otherwise:
    box.sql("UPDATE runs SET reason = NULL WHERE run_id = 'h3'")  # ... and repaired
    ids = [SHOWN_BAD if c == "run_id" else r for c, r in DAMAGED.items()]

    def listed() -> dict[str, str]:
        proc = box.cli("runs", "list", "--all", "--store", box.url)
        assert proc.returncode == 0, proc.stderr
        return {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()[1:]}

    rows = listed()  # (a listing does not read the fingerprint: `show` does)
    listed_ids = [i for i in ids if i != "d-fingerprint"]
    assert {i: rows[i] for i in listed_ids} == dict.fromkeys(listed_ids, "damaged")
    assert rows["d-fingerprint"] == "pending"
    assert all(rows[f"h{i}"] == "pending" for i in range(4))
    top = box.cli("runs", "list", "--json", "--store", box.url)
    assert top.returncode == 0, top.stderr
    by_id = {r["run_id"]: r for r in json.loads(top.stdout)}
    assert by_id["d-status"]["status"] == "damaged"
    assert "'status'" in by_id["d-status"]["damaged"]
    for run_id in ("d-reason", "d-source", "d-function", "d-status", "d-fingerprint"):
        shown = box.cli("runs", "show", run_id, "--store", box.url)
        assert shown.returncode == 0, shown.stderr
        assert "damaged" in shown.stdout and "Traceback" not in shown.stderr
        as_json = box.cli("runs", "show", run_id, "--json", "--store", box.url)
        assert as_json.returncode == 0, as_json.stderr
        assert json.loads(as_json.stdout)["status"] == "damaged"

    # A worker drives every healthy run and blocks the damaged ones it could pick up.
    worker = box.worker()
    assert sorted(e for e in box.effects()) == [f"double {i}" for i in range(4)]
    for i in range(4):
        assert box.status(f"h{i}") == "completed"
    raw = {
        str(r[0]): str(r[1])
        for r in box.sql("SELECT CAST(run_id AS BLOB), CAST(status AS BLOB) FROM runs")
    }
    assert raw["b'bad\\xff\\xfe'"] == "b'blocked'"
    for column in ("function", "reason", "source", "owner", "fingerprint"):
        assert box.status(DAMAGED[column]) == "blocked", column
        assert f"run {DAMAGED[column]}: blocked" in worker.stdout
    assert box.status("d-status") == SHOWN_BAD  # not runnable: left as it is
    assert box.status("d-parent") == "pending"  # a child of no run: not driven
    assert "Traceback" not in worker.stdout + worker.stderr
    rows = listed()  # still shown, still damaged where the damage is
    assert rows["d-status"] == rows["d-function"] == rows[SHOWN_BAD] == "damaged"
    assert rows["h0"] == "completed"


# ------------------------------------------------------------------ malformed checkpoints


def _without_seal(blob: bytes) -> bytes:
    end = blob.rindex(b',"seal":')
    return blob[:end] + b"}"


def test_malformed_checkpoints_block_the_run_and_runs_show_still_works(box: Box) -> None:
    box.crash("hold", 1, run_id="base", at="hold")
    base = box.row("base")
    assert base["status"] == "running" and base["seq"] == 1
    document = orjson.loads(base["checkpoint"])
    assert document["plain"] is True and document["locals"]["data"] == [1, 1]
    for run_id in ("deep", "seq-max", "seq-text", "format-1", "format-1-accepted"):
        box.copy_row("base", run_id)
    box.sql("DELETE FROM runs WHERE run_id = 'base'")
    _, outcomes = box.run({"fn": "double", "args": [7], "run_id": "ok", "dispatch": True})
    assert outcomes == [{"result": "ok"}]

    # 1,000 levels of lists, sealed with a valid checksum.
    deep = b"[" * 1000 + b"]" * 1000
    body = _without_seal(base["checkpoint"]).replace(b'"data":[1,1]', b'"data":' + deep)
    assert body.count(b"[") == 1000
    box.sql("UPDATE runs SET checkpoint = ? WHERE run_id = 'deep'", (seal(body),))
    box.sql("UPDATE runs SET seq = 9223372036854775807 WHERE run_id = 'seq-max'")
    box.sql("UPDATE runs SET seq = 'abc' WHERE run_id = 'seq-text'")
    v1 = {
        "v": 1,
        "fn": document["fn"],
        "fp": base["fingerprint"],
        "seq": 1,
        "state": document["state"],
        "locals": document["locals"],
    }
    for run_id in ("format-1", "format-1-accepted"):
        box.sql(
            "UPDATE runs SET checkpoint = ? WHERE run_id = ?", (json.dumps(v1).encode(), run_id)
        )

    for args in (["deep"], ["deep", "--json"], ["seq-max"], ["seq-text"], ["format-1"]):
        shown = box.cli("runs", "show", *args, "--store", box.url)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "Traceback" not in shown.stderr
    shown = box.cli("runs", "show", "deep", "--store", box.url)
    (line,) = [x for x in shown.stdout.splitlines() if x.startswith("  data = ")]
    assert line.count("[") == 20 and "..." in line  # elided

    worker = box.worker()
    assert box.status("ok") == "completed"
    assert box.effects() == ["double 7"]  # nothing after a malformed checkpoint ran
    for run_id in ("deep", "seq-max", "seq-text", "format-1"):
        assert box.status(run_id) == "blocked", (run_id, worker.stdout)
        assert f"run {run_id}: blocked" in worker.stdout
    reasons = {r: str(box.row(r)["reason"]) for r in ("deep", "seq-max", "seq-text", "format-1")}
    assert reasons["deep"].startswith("CheckpointError") and "nested" in reasons["deep"]
    assert "'seq'" in reasons["seq-max"] and "'seq'" in reasons["seq-text"]
    assert "accept_format_1" in reasons["format-1"]
    assert box.status("format-1-accepted") == "blocked"  # the worker does not opt in

    # A runtime that opts in resumes the format-1 checkpoint.
    box.sql("UPDATE runs SET status = 'running' WHERE run_id = 'format-1-accepted'")
    _, outcomes = box.run(
        {"fn": "hold", "args": [1], "run_id": "format-1-accepted", "format_1": True}
    )
    assert outcomes == [{"result": 3}]
    assert box.effects() == ["double 7", "hold 1"]
    listing = box.cli("runs", "list", "--store", box.url)
    assert listing.returncode == 0, listing.stderr


def test_runs_show_elides_a_deep_value_it_can_read(box: Box) -> None:
    # 150 levels: within the codec's limit (200, with the envelope), so the
    # checkpoint reads; shown elided past 20 levels, one line per local.
    box.crash("hold", 1, run_id="nested", at="hold")
    row = box.row("nested")
    deep = b"[" * 150 + b"1" + b"]" * 150
    body = _without_seal(row["checkpoint"]).replace(b'"data":[1,1]', b'"data":' + deep)
    box.sql("UPDATE runs SET checkpoint = ? WHERE run_id = 'nested'", (seal(body),))
    shown = box.cli("runs", "show", "nested", "--store", box.url)
    assert shown.returncode == 0, shown.stderr
    (line,) = [x for x in shown.stdout.splitlines() if x.startswith("  data = ")]
    assert "..." in line and len(line) <= 220
    as_json = box.cli("runs", "show", "nested", "--json", "--store", box.url)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)["locals"]["data"]
    depth = 0
    while isinstance(data, list):
        data, depth = data[0], depth + 1
    assert data == "..." and depth < 21
