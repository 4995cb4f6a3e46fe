"""Ownership of runs: one owner at a time, released by the OS when it dies.

`FileOwnership` (SQLite) owns a run by holding an open-file-description
(OFD) write lock on one byte of the database file itself, at an offset
derived from the run id, far above the bytes SQLite locks (its lock bytes
sit at 1 GiB; ours are at 2**62 and beyond, past any real file's end). The
kernel drops the locks of a description when its last descriptor closes,
so when the owner process exits, however it exits (SIGKILL included), a
run can be taken over at once, with no lease to expire.

Because the lock is on the database file, every path to it (a symlink, a
hard link, a relative path) meets the same locks, and there is no side
file to lose. Within a process, locks are kept in one table per file
identity (st_dev, st_ino): the set of runs owned by any store of the
process on that file, and one descriptor for their locks. That descriptor
stays open while a store of the process uses the file: closing a
descriptor of a database file would drop SQLite's own (POSIX) locks on it.

Systems without OFD locks (not Linux) fall back to POSIX record locks on
the same bytes, which are per process: keep one resumable store per
database file per process there. The fencing of every write (base.py) is
the backstop in all cases.

Two run ids share a byte with probability about 2**-61 per pair: the only
effect would be that one waits for the other.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import struct
import threading

from .base import Ownership

__all__ = ["FileOwnership", "LocalOwnership"]

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
    """The locks of this process on one database file."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self.pid = os.getpid()
        self.owned: set[str] = set()
        self.users = 0
        self.guard = threading.Lock()

    def lock(self, offset: int, kind: int) -> bool:
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


class FileOwnership(Ownership):
    """Ownership by OFD locks on a database file (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.mine: set[str] = set()
        self._table: _Table | None = None
        self._key: tuple[int, int] | None = None

    def _open(self) -> _Table:
        """The table of the file (opened at the first claim, so that stores
        that only read never open the file for writing)."""
        table = self._table
        if table is not None and table.pid == os.getpid():
            return table
        st = os.stat(self.path)
        key = (st.st_dev, st.st_ino)
        with _tables_guard:
            table = _tables.get(key)
            if table is None or table.pid != os.getpid():
                # New, or inherited through fork(): a description of our own.
                table = _tables[key] = _Table(self.path)
            table.users += 1
        self._table, self._key, self.mine = table, key, set()
        return table

    def acquire(self, run_id: str) -> bool:
        table = self._open()
        with table.guard:
            if run_id in table.owned:
                return False
            if not table.lock(_offset(run_id), fcntl.F_WRLCK):
                return False
            table.owned.add(run_id)
            self.mine.add(run_id)
            return True

    def release(self, run_id: str) -> None:
        table = self._table
        if table is None or run_id not in self.mine:
            return
        with table.guard:
            self.mine.discard(run_id)
            table.owned.discard(run_id)
            table.lock(_offset(run_id), fcntl.F_UNLCK)

    def close(self) -> None:
        table, key = self._table, self._key
        if table is None or key is None:
            return
        for run_id in list(self.mine):
            self.release(run_id)
        with _tables_guard:
            table.users -= 1
            if table.users == 0 and _tables.get(key) is table:
                del _tables[key]
                os.close(table.fd)
        self._table = self._key = None
