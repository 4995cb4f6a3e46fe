"""Ownership of runs across processes, released by the OS when the owner dies.

A run is owned by holding a POSIX record lock (`fcntl.lockf`) on one byte of
a lock file beside the database, at an offset derived from the run id. The
kernel drops every lock of a process the moment it exits, however it exits
(SIGKILL included), so a run whose owner died can be taken over at once, with
no lease to expire. Record locks belong to the process, not to a thread or
file descriptor, so this process also keeps the set of runs it owns (one
driver per run inside a process too), and the lock file is opened once per
process and never closed while locks are held (closing any descriptor of it
would drop them all).

Two run ids share a byte with probability about 2**-56 per pair: the only
effect would be that one waits for the other.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading

__all__ = ["LockFile", "lock_file"]

_files: dict[str, LockFile] = {}
_files_guard = threading.Lock()


class LockFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.owned: set[str] = set()
        self.guard = threading.Lock()

    def lock(self, run_id: str) -> bool:
        with self.guard:
            if run_id in self.owned:
                return False
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _offset(run_id))
            except OSError as e:
                if e.errno in (errno.EACCES, errno.EAGAIN):
                    return False
                raise
            self.owned.add(run_id)
            return True

    def unlock(self, run_id: str) -> None:
        with self.guard:
            if run_id in self.owned:
                self.owned.discard(run_id)
                fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, _offset(run_id))


def lock_file(path: str) -> LockFile:
    """The process-wide LockFile for `path`."""
    key = os.path.realpath(path)
    with _files_guard:
        found = _files.get(key)
        if found is None:
            found = _files[key] = LockFile(key)
        return found


def _offset(run_id: str) -> int:
    return int.from_bytes(hashlib.sha256(run_id.encode("utf-8")).digest()[:7], "big")
