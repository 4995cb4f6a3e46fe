"""Ownership of runs: one owner at a time, released by the OS when it dies
(SQLite), or when its lease ends (PostgreSQL: `LeaseOwnership`, at the end).

`FileOwnership` (SQLite) owns a run by holding an open-file-description
(OFD) write lock on one byte of the database file itself, at an offset
derived from the run id, far above the bytes SQLite locks (its lock bytes
sit at 1 GiB; ours are at 2**62 and beyond, past any real file's end). The
kernel drops the locks of a description when its last descriptor closes,
so when the owner process exits, however it exits (SIGKILL included), a
run can be taken over at once, with no lease to expire. No other process
keeps the description open: programs the owner starts do not inherit the
descriptor (O_CLOEXEC), and a child it forks closes its copy at once.

Because the lock is on the database file, every path to it (a symlink, a
relative path) meets the same locks, and there is no side file to lose.
(A file with several hard links is refused by the SQLite store itself:
SQLite would keep one WAL per name.) Within a process, locks are kept in
one table per file identity (st_dev, st_ino): the set of runs owned by any
store of the process on that file, and one descriptor for their locks.
Every store of the file counts as a user of its table from the time it
opened the file until it closes, whether it ever claimed a run or not, and
the descriptor is closed only when the last of them closes, after its
connection: closing a descriptor of a database file drops the process's
SQLite (POSIX) locks on it, and another process would then take itself for
the file's last user and delete its WAL under the stores still open.
SQLite connections that the process opens on the file by other means than
a resumable store are not counted: close them before the last store.

Systems without OFD locks (not Linux) fall back to POSIX record locks on
the same bytes, which are per process (so a store closing its connection
can drop them): keep one resumable store per database file per process
there. The fencing of every write (base.py) is the backstop in all cases.

Two run ids share a byte with probability about 2**-61 per pair: the only
effect would be that one waits for the other.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import StoreError
from .base import Ownership

__all__ = ["FileOwnership", "LeaseOwnership", "LocalOwnership"]

_log = logging.getLogger("resumable")

_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_BASE = 2**62


def _offset(run_id: str) -> int:
    digest = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).digest()
    return _BASE + int.from_bytes(digest[:8], "big") % 2**61


class LocalOwnership(Ownership):
    """Ownership within one process (memory://)."""

    def __init__(self) -> None:
        self.owned: set[str] = set()

    def acquire(self, run_id: str) -> bool:
        if run_id in self.owned:
            return False
        self.owned.add(run_id)
        return True

    def release(self, run_id: str) -> None:
        self.owned.discard(run_id)

    def close(self) -> None:
        self.owned.clear()


class _Table:
    """What this process holds on one database file: the runs owned by any
    of its stores, and one descriptor for their locks (opened at the first
    claim, so that stores that only read never open the file for writing)."""

    def __init__(self, key: tuple[int, int]) -> None:
        self.key = key
        self.fd: int | None = None
        self.pid = os.getpid()
        self.owned: set[str] = set()
        self.users = 0  # the stores of this process on the file, claiming or not
        self.guard = threading.Lock()

    def descriptor(self, path: str) -> int:
        """The descriptor the locks are taken on (call with `guard` held)."""
        if self.fd is None:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self.key:
                # The path names another file than the one the store opened.
                # Not closed: that file may be another store's, and closing
                # a descriptor of it would drop that store's SQLite locks.
                _strays.append(fd)
                raise StoreError(
                    f"{path} was replaced by another file while a store had it open; "
                    "open the store again"
                )
            self.fd = fd
        return self.fd

    def lock(self, offset: int, kind: int) -> bool:
        assert self.fd is not None
        if _OFD_SETLK is not None:
            # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
            flock = struct.pack("hhqqi4x", kind, os.SEEK_SET, offset, 1, 0)
            try:
                fcntl.fcntl(self.fd, _OFD_SETLK, flock)
            except OSError as e:
                if e.errno in (errno.EACCES, errno.EAGAIN):
                    return False
                raise
            return True
        command = fcntl.LOCK_UN if kind == fcntl.F_UNLCK else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.lockf(self.fd, command, 1, offset)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
        return True


_tables: dict[tuple[int, int], _Table] = {}
_tables_guard = threading.Lock()
#: Descriptors opened on a path that had come to name another file (see
#: _Table.descriptor): kept open until the process exits.
_strays: list[int] = []


def _after_fork_in_child() -> None:
    """Close the descriptors a forked child inherited: they share the
    parent's open file descriptions, so a child that kept them (a
    multiprocessing worker, say) would hold the parent's runs locked after
    the parent died. POSIX locks (SQLite's) are not inherited, so closing
    these drops none of the child's. The child's stores register again."""
    global _tables_guard
    _tables_guard = threading.Lock()
    for table in _tables.values():
        if table.fd is not None:
            with contextlib.suppress(OSError):
                os.close(table.fd)
            table.fd = None
    _tables.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class FileOwnership(Ownership):
    """Ownership by OFD locks on a database file (see the module docstring).

    Made by each store of the file, right after the store opened it: it
    counts as a user of the file's table until `close`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.mine: set[str] = set()
        self._table: _Table | None = self._register()

    def _register(self) -> _Table:
        st = os.stat(self.path)
        key = (st.st_dev, st.st_ino)
        with _tables_guard:
            table = _tables.get(key)
            if table is None or table.pid != os.getpid():
                # New, or inherited through fork(): a table (and later a
                # description) of our own.
                table = _tables[key] = _Table(key)
            table.users += 1
        return table

    def _current(self) -> _Table:
        table = self._table
        if table is None:
            raise StoreError(f"the store {self.path} is closed")
        if table.pid != os.getpid():  # used in a child after fork()
            self._table, self.mine = None, set()
            table = self._table = self._register()
        return table

    def acquire(self, run_id: str) -> bool:
        table = self._current()
        with table.guard:
            if run_id in table.owned:
                return False
            table.descriptor(self.path)
            if not table.lock(_offset(run_id), fcntl.F_WRLCK):
                return False
            table.owned.add(run_id)
            self.mine.add(run_id)
            return True

    def release(self, run_id: str) -> None:
        table = self._table
        if table is None or table.pid != os.getpid() or run_id not in self.mine:
            return
        with table.guard:
            self.mine.discard(run_id)
            table.owned.discard(run_id)
            table.lock(_offset(run_id), fcntl.F_UNLCK)

    def close(self) -> None:
        """Release this store's runs; the last store of the process on the
        file closes the descriptor (after closing its own connection: every
        SQLite connection of the process to the file is closed by then)."""
        table = self._table
        if table is None:
            return
        for run_id in list(self.mine):
            self.release(run_id)
        self._table = None
        if table.pid != os.getpid():
            return  # the parent's table: not ours to close
        with _tables_guard:
            table.users -= 1
            if table.users == 0:
                if _tables.get(table.key) is table:
                    del _tables[table.key]
                if table.fd is not None:
                    os.close(table.fd)
                    table.fd = None


class LeaseOwnership(Ownership):
    """Ownership by leases in the database (PostgreSQL): a run is owned by a
    row of `leases` naming this object's `holder` and an expiry measured
    with the database's clock (`now()`), never a worker's. `acquire` takes
    the row in one statement only if there is none, it has expired (its
    owner died, or froze past it), or it is this holder's own; a heartbeat
    thread renews the runs held every `heartbeat` seconds; `release`
    deletes the row. A holder that lost a lease (frozen past its expiry,
    then taken over) writes nothing more: the takeover's claim bumped the
    owner generation that fences its writes (base.py).

    `run(sql, params)` runs one statement on the store and returns its rows."""

    def __init__(
        self,
        run: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]],
        *,
        lease: float,
        heartbeat: float,
        holder: str,
        renew: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]] | None = None,
    ) -> None:
        self.run = run
        #: How renewals run: on a connection of their own, so that a renewal
        #: never waits behind the work it keeps alive (a busy pool).
        self.renew = renew or run
        self.lease = lease
        self.heartbeat = heartbeat
        self.holder = holder
        self.mine: set[str] = set()
        #: run id -> until when (time.monotonic) its lease is surely live:
        #: the lease's length from the moment its last acquire or renewal
        #: was sent (the database measured it from later still).
        self.live_until: dict[str, float] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self, run_id: str) -> bool:
        with self._guard:
            if run_id in self.mine:
                return False  # another driver of this process has it
            self.mine.add(run_id)  # reserved while the statement runs
        sent = time.monotonic()
        try:
            got = self.run(
                "INSERT INTO leases (run_id, holder, expires_at) "
                "VALUES (?, ?, now() + make_interval(secs => ?)) "
                "ON CONFLICT (run_id) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at "
                "WHERE leases.expires_at <= now() OR leases.holder = excluded.holder "
                "RETURNING run_id",
                (run_id, self.holder, self.lease),
            )
        except BaseException:
            with self._guard:
                self.mine.discard(run_id)
            raise
        with self._guard:
            if not got:
                self.mine.discard(run_id)
                return False
            self.live_until[run_id] = sent + self.lease
            if self._beat is None:
                self._beat = threading.Thread(
                    target=self._renew, name="resumable-lease-heartbeat", daemon=True
                )
                self._beat.start()
        return True

    def release(self, run_id: str) -> None:
        with self._guard:
            if run_id not in self.mine:
                return
            self.mine.discard(run_id)
            self.live_until.pop(run_id, None)
        try:
            self.run(
                "DELETE FROM leases WHERE run_id = ? AND holder = ? RETURNING run_id",
                (run_id, self.holder),
            )
        except StoreError as e:  # then the lease expires by itself
            _log.warning("resumable: the lease of run %r was not released: %s", run_id, e)

    def _renew(self) -> None:
        while not self._stop.wait(self.heartbeat):
            with self._guard:
                held = sorted(self.mine)
            if not held:
                continue
            sent = time.monotonic()
            try:
                # Rows another transaction has locked (another worker trying
                # to take one, perhaps frozen in that transaction) are skipped,
                # never waited for: renewed at the next beat.
                renewed = self.renew(
                    "UPDATE leases SET expires_at = now() + make_interval(secs => ?) "
                    "WHERE run_id IN (SELECT run_id FROM leases WHERE holder = ? "
                    "AND run_id = ANY(?) FOR UPDATE SKIP LOCKED) RETURNING run_id",
                    (self.lease, self.holder, held),
                )
                kept = ours = {row[0] for row in renewed}
                if len(kept) < len(held):  # skipped, or lost: a plain read tells
                    rows = self.renew(
                        "SELECT run_id FROM leases WHERE holder = ? AND run_id = ANY(?)",
                        (self.holder, held),
                    )
                    ours = {row[0] for row in rows}
            except Exception as e:  # the store is down: try again at the next beat
                _log.warning("resumable: leases not renewed: %s", e)
                continue
            lost = set(held) - ours
            with self._guard:
                lost &= self.mine  # released meanwhile: not lost
                for run_id in kept & self.mine:
                    self.live_until[run_id] = sent + self.lease
                for run_id in lost:
                    self.live_until[run_id] = 0.0
            for run_id in sorted(lost):
                _log.warning(
                    "resumable: the lease of run %r ended before it was renewed; another "
                    "driver may have taken the run over (its writes are fenced)",
                    run_id,
                )

    def current(self, run_id: str) -> bool:
        return time.monotonic() < self.live_until.get(run_id, 0.0)

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join()
        with self._guard:
            held, self.mine = sorted(self.mine), set()
        if held:
            with contextlib.suppress(StoreError):
                self.run(
                    "DELETE FROM leases WHERE holder = ? AND run_id = ANY(?) RETURNING run_id",
                    (self.holder, held),
                )
