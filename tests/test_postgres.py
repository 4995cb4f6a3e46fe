"""The PostgreSQL store's own behaviour: URLs and errors, the schema created
once by processes starting together, and leases measured by the database.
(Its semantics are checked with the other stores': tests/stores.py.)"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.parse
from typing import Any

import pytest

from resumable import StoreError
from resumable.store import RunRecord, open_store
from resumable.store.base import checkpoint_write
from resumable.store.migrations import SCHEMA_VERSION


def psql(url: str, sql: str) -> list[tuple[object, ...]]:
    import psycopg

    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    base = urllib.parse.urlunsplit(parts._replace(query=""))
    with psycopg.connect(base, autocommit=True) as conn:
        if "schema" in query:
            conn.execute(f"SET search_path = {query['schema']}")
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@127.0.0.1:1/db", "PostgreSQL server at 127.0.0.1:1"),
        ("postgresql://u@host.invalid/db", "host.invalid:5432"),
        ("postgres://u@127.0.0.1:x/db", "Port could not be cast"),
        ("postgresql://u@127.0.0.1/db?lease=0", "lease must be seconds"),
        ("postgresql://u@127.0.0.1/db?lease=5&heartbeat=9", "heartbeat must be shorter"),
        ("postgresql://u@127.0.0.1/db?schema=a;b", "schema must be a plain SQL name"),
    ],
)
def test_bad_urls_and_unreachable_servers_say_where(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message.replace(".", r"\.")):
        open_store(url)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda url: url + "&bogus=1", "The URL's options are resumable's (lease, heartbeat"),
        (lambda url: _database(url, "resumable_no_such_db"), "create it (createdb"),
        (lambda url: _netloc(url, user="resumable_no_such_role"), "create that role"),
        (lambda url: _netloc(url, port=1), "is the server running"),
    ],
)
def test_a_failed_connection_says_what_to_do(postgres_url: str, change: Any, says: str) -> None:
    with pytest.raises(StoreError, match=re.escape(says)):
        open_store(change(postgres_url))


def _netloc(url: str, *, user: str | None = None, port: int | None = None) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user or parts.username}@{host}:{port or parts.port or 5432}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def test_a_password_is_never_shown() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql://u:secret@127.0.0.1:1/db")
    assert "secret" not in str(info.value) and "u:***@" in str(info.value)


def test_without_psycopg_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError, match=r"pip install 'resumable\[postgres\]'"):
        open_store("postgresql://u@127.0.0.1/db")


def test_processes_opening_an_empty_database_at_once_create_the_schema_once(
    postgres_url: str,
) -> None:
    code = "import sys; from resumable.store import open_store; open_store(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, postgres_url]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert psql(postgres_url, "SELECT value FROM resumable_meta") == [(str(SCHEMA_VERSION),)]
    tables = psql(
        postgres_url,
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
    )
    assert tables == [(8,)]  # version 5 added queues and queue_starts


def test_a_running_run_is_runnable_only_once_its_lease_expired(postgres_url: str) -> None:
    store = open_store(postgres_url)
    other = open_store(postgres_url)
    try:
        assert store.create(RunRecord("r", "m:f", "fp", b"{}"))
        assert store.lock("r")
        lease = store.claim("r", "a@host", "fp")
        assert lease is not None
        assert other.runnable(time.time(), ["m:f"]) == []
        assert other.runnable_functions(time.time()) == set()
        assert not other.lock("r")
        # The owner dies (its lease is not renewed): by the database's clock,
        # the lease has ended.
        store.ownership.close()
        psql(postgres_url, "INSERT INTO leases VALUES ('r', 'dead', now() - interval '1 s')")
        assert [r.run_id for r in other.runnable(time.time(), ["m:f"])] == ["r"]
        assert other.lock("r")
        taken = other.claim("r", "b@host", "fp")
        assert taken is not None and taken.generation == lease.generation + 1
        # The old owner's write changes nothing.
        assert not store.apply(checkpoint_write(lease, b"late", 1, 1, "fp"))
        assert other.apply(checkpoint_write(taken, b"mine", 1, 1, "fp"))
        record = store.get("r")
        assert record is not None and record.checkpoint == b"mine"
    finally:
        store.close()
        other.close()


def test_a_driver_past_its_lease_commits_nothing_even_before_a_takeover(
    postgres_url: str,
) -> None:
    """Frozen past its lease (not renewed), a driver's next checkpoint is
    refused by the database's clock, though no one has claimed the run yet:
    so it never starts the step after it."""
    store = open_store(postgres_url)
    try:
        assert store.create(RunRecord("r", "m:f", "fp", b"{}"))
        assert store.lock("r")
        lease = store.claim("r", "a@host", "fp")
        assert lease is not None
        assert store.apply(checkpoint_write(lease, b"one", 1, 1, "fp"))
        store.ownership.close()  # no more heartbeats: as if frozen
        psql(postgres_url, "UPDATE leases SET expires_at = now() - interval '1 s'")
        assert not store.apply(checkpoint_write(lease, b"two", 2, 2, "fp"))
        record = store.get("r")
        assert record is not None and record.checkpoint == b"one"
        assert record.generation == lease.generation  # nobody took it over
    finally:
        store.close()


def test_the_heartbeat_keeps_a_lease_past_its_length(postgres_url: str) -> None:
    url = postgres_url.replace("lease=3&heartbeat=0.5", "lease=1&heartbeat=0.2")
    store = open_store(url)
    other = open_store(url)
    try:
        assert store.create(RunRecord("r", "m:f", "fp", b"{}"))
        assert store.lock("r")
        time.sleep(1.5)
        assert not other.lock("r")
        store.unlock("r")
        assert other.lock("r")
    finally:
        store.close()
        other.close()


def test_text_postgresql_cannot_hold_is_stored_escaped(postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        assert store.create(RunRecord("r", "m:f", "fp", b"{}"))
        lease = store.claim("r", "a\x00b", "fp")
        assert lease is not None
        record = store.get("r")
        assert record is not None and record.owner == "a\\x00b"
    finally:
        store.close()


FROZEN_IN_A_TRANSACTION = """
import sys, time
from resumable.store import open_store

store = open_store(sys.argv[1])
assert store.lock("r") and store.claim("r", "a@host", "fp") is not None


def hold():  # in one of the store's transactions, with the run's rows locked
    store._exec("SELECT 1 FROM runs WHERE run_id = 'r' FOR UPDATE")
    store._exec("SELECT 1 FROM leases WHERE run_id = 'r' FOR UPDATE")
    print("holding", flush=True)
    time.sleep(3600)


store._call(hold)
"""


def test_a_worker_frozen_inside_a_transaction_does_not_hold_up_a_takeover(
    postgres_url: str,
) -> None:
    """SIGSTOP while one of the store's transactions is open keeps its row
    locks on the server. The server ends such a session after half a lease
    idle, so another worker takes the run over once the lease ended, instead
    of waiting on the locks for as long as the worker is frozen."""
    import signal
    import threading

    url = postgres_url.replace("lease=3&heartbeat=0.5", "lease=1&heartbeat=0.2")
    other = open_store(url)
    proc = subprocess.Popen(
        [sys.executable, "-c", FROZEN_IN_A_TRANSACTION, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.create(RunRecord("r", "m:f", "fp", b"{}"))
        assert proc.stdout is not None and proc.stdout.readline() == "holding\n"
        proc.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        taken: list[object] = []

        def take_over() -> None:
            while not taken and time.monotonic() - frozen_at < 20:
                try:
                    if other.lock("r"):
                        taken.append(other.claim("r", "b@host", "fp"))
                except StoreError:
                    pass  # a lock wait longer than the lease: tried again
                time.sleep(0.05)

        taker = threading.Thread(target=take_over, daemon=True)
        taker.start()
        taker.join(timeout=30)
        assert taken and taken[0] is not None, "the frozen worker's locks held up the takeover"
        assert time.monotonic() - frozen_at < 1 + 0.5 + 3.0  # lease, idle limit, a slow machine
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.communicate()
        other.close()


def test_leases_are_renewed_while_another_transaction_locks_one_of_them(
    postgres_url: str,
) -> None:
    """A lease row another transaction has locked (a worker frozen while it
    tried to take the run) is skipped by the heartbeat, never waited for:
    the other leases are renewed meanwhile, and that one once it is free."""
    import psycopg

    url = postgres_url.replace("lease=3&heartbeat=0.5", "lease=1&heartbeat=0.2")
    store = open_store(url)
    try:
        for run_id in ("r1", "r2"):
            assert store.create(RunRecord(run_id, "m:f", "fp", b"{}"))
            assert store.lock(run_id)
        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        with psycopg.connect(urllib.parse.urlunsplit(parts._replace(query=""))) as other:
            other.execute(f"SET search_path = {query['schema']}")
            other.execute("SELECT 1 FROM leases WHERE run_id = 'r1' FOR UPDATE")
            time.sleep(2.0)  # twice the lease, the row locked all along
            assert store.ownership.current("r2"), "r2's lease waited behind r1's lock"
            other.rollback()
        time.sleep(0.8)
        assert store.ownership.current("r1")  # renewed once free (it was still ours)
    finally:
        store.close()
