"""Helpers of the tests that run row_jobs in real processes and look at, or
tamper with, the rows they leave (test_run_ids.py, test_hostile_rows.py,
test_inspect.py).

A `Box` is one test's world: a SQLite file, the folder where row_jobs.py is
compiled, a side-effect log, and the environment of its subprocesses
(row_runner.py for `rt.run`, `python -m resumable` for the CLI and the worker).
Rows are read and changed with the stdlib sqlite3, never through resumable.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resumable_compiler.build import compile_file
from tests.procs import TIMEOUT, clean_env, resumable_cmd

PROGRAMS = Path(__file__).resolve().parent / "crash_programs"


def compile_row_jobs(folder: Path) -> Path:
    """row_jobs.py copied into `folder` and compiled there; the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROGRAMS / "row_jobs.py", folder / "row_jobs.py")
    result = compile_file(str(folder / "row_jobs.py"))
    assert not result.errors, "\n".join(str(e) for e in result.errors)
    return folder


@dataclass
class Box:
    folder: Path
    programs: Path  # the folder of the compiled row_jobs.py
    db: Path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    @property
    def log(self) -> Path:
        return self.folder / "jobs.log"

    @property
    def module(self) -> Path:
        return self.programs / "row_jobs.py"

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(JOBS_LOG=str(self.log), **extra)

    def effects(self) -> list[str]:
        """The side effects so far, without their idempotency keys."""
        if not self.log.exists():
            return []
        return [line.rsplit(" ", 1)[0] for line in self.log.read_text().splitlines()]

    # -- subprocesses ------------------------------------------------------------

    def run(
        self, *calls: dict[str, Any], crash_at: str | None = None, **env: str
    ) -> tuple[int, list[dict[str, Any]]]:
        """row_runner.py with `calls`: (exit status, one outcome per call that
        finished). `crash_at`: $CRASH_AT (the process is killed there)."""
        if crash_at is not None:
            env["CRASH_AT"] = crash_at
        proc = subprocess.run(
            [
                sys.executable,
                str(PROGRAMS / "row_runner.py"),
                str(self.programs),
                self.url,
                json.dumps(list(calls)),
            ],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if proc.returncode not in (0, -9):
            raise AssertionError(f"row_runner exited {proc.returncode}:\n{proc.stderr}")
        return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]

    def run_one(self, fn: str, *args: Any, run_id: str | None = None, **env: str) -> dict[str, Any]:
        status, outcomes = self.run({"fn": fn, "args": list(args), "run_id": run_id}, **env)
        assert status == 0 and len(outcomes) == 1, (status, outcomes)
        return outcomes[0]

    def crash(self, fn: str, *args: Any, run_id: str, at: str, **env: str) -> None:
        """Start a run and have its process killed (SIGKILL) at `at`."""
        status, outcomes = self.run(
            {"fn": fn, "args": list(args), "run_id": run_id}, crash_at=at, **env
        )
        assert status == -9 and not outcomes, (status, outcomes)

    def cli(
        self, *args: str, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return resumable_cmd(*args, env=self.env(**env), cwd=cwd)

    def worker(self, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
        """A draining worker of row_jobs; it must exit 0."""
        proc = self.cli(
            "worker", "--store", self.url, "--module", str(self.module), "--drain", *flags, **env
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    # -- the rows, through sqlite3 -------------------------------------------------

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db)
        try:
            rows = conn.execute(statement, params).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()

    def columns(self) -> list[str]:
        return [row[1] for row in self.sql("PRAGMA table_info(runs)")]

    def row(self, run_id: str) -> dict[str, Any]:
        """A run's row (text that is not UTF-8 read with backslash escapes)."""
        conn = sqlite3.connect(self.db)
        conn.text_factory = lambda data: data.decode("utf-8", "backslashreplace")
        try:
            cursor = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,))
            names = [d[0] for d in cursor.description]
            found = cursor.fetchall()
        finally:
            conn.close()
        assert len(found) == 1, (run_id, found)
        return dict(zip(names, found[0], strict=True))

    def status(self, run_id: str) -> str:
        return str(self.row(run_id)["status"])

    def copy_row(self, source: str, run_id: str, **changes: Any) -> None:
        """Insert a copy of run `source`'s row as `run_id`, with `changes`."""
        names = self.columns()
        changes = {"run_id": run_id, **changes}
        select = ", ".join("?" if n in changes else n for n in names)
        params = (*(changes[n] for n in names if n in changes), source)
        self.sql(
            f"INSERT INTO runs ({', '.join(names)}) SELECT {select} FROM runs WHERE run_id = ?",
            params,
        )


def make_box(tmp_path: Path, programs: Path) -> Box:
    return Box(tmp_path, programs, tmp_path / "state.db")
