"""Helpers for tests that drive user modules in real processes: compile a
module into a folder, run Python code or `resumable` commands in a
subprocess with a controlled working directory and environment, read the
SQLite file those processes wrote, and poll with deadlines.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resumable_compiler.build import compile_file

TIMEOUT = 60


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment (PYTHONPATH included, so subprocesses import
    the same resumable) without any RESUMABLE_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESUMABLE_")}
    env.update(extra)
    return env


def compile_module(folder: Path, name: str, source: str) -> Path:
    """Write `folder/<name>.py`, compile it (no errors allowed); its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    result = compile_file(str(path))
    assert not result.errors, "\n".join(str(e) for e in result.errors)
    return path


def python(
    code: str, *args: str, cwd: Path, env: dict[str, str], timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run `code` (dedented) with `python -c` in `cwd`."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spawn(code: str, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `code` with `python -c` in `cwd`, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def resumable_cmd(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """`python -m resumable ARGS` in `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", "resumable", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_worker(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`python -m resumable worker ARGS` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "resumable", "worker", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str], *, kill: bool = False) -> tuple[str, str]:
    """Stop a background process (SIGTERM, or SIGKILL) and collect its output."""
    if proc.poll() is None:
        if kill:
            proc.kill()
        else:
            proc.terminate()
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def wait_until(
    condition: Callable[[], Any],
    what: str,
    *,
    timeout: float = TIMEOUT,
    proc: subprocess.Popen[str] | None = None,
    interval: float = 0.01,
) -> Any:
    """Poll `condition` until it returns something true (returned); fail
    after `timeout` seconds, or when `proc` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process exited ({proc.returncode}) before {what}:\n{out}{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def rows(db: Path, where: str = "1", *values: Any) -> list[dict[str, Any]]:
    """The runs table of a SQLite store (read-only, as another process sees it)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        cursor = conn.execute(f"SELECT * FROM runs WHERE {where} ORDER BY rowid", values)
        return [dict(row) for row in cursor]
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return []
        raise
    finally:
        conn.close()


def statuses(db: Path) -> dict[str, str]:
    """{run id: status} of every run in a SQLite store."""
    return {row["run_id"]: row["status"] for row in rows(db)}


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
