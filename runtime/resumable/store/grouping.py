"""Group commit: the writes async callers await (new runs, claims, checkpoints,
parks, ends) queue up while the store commits; the next commit applies all that
queued in one transaction, so runs driven concurrently share one commit
(SQLite: one fsync; PostgreSQL: one round trip and one WAL flush) instead
of waiting for one each. Each write still commits whole or not at all, and
its caller goes on only after the commit. If the shared transaction fails,
each write is tried again alone, so one bad write fails only its own caller.

Mixed into the SQL stores, which give it

    _executor   where commits run (off the event loop)
    _call       a method in one transaction of the engine, its errors mapped
    _transaction, _apply, _claim, _insert   (sql.py)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from typing import Any

from .base import Claim, Lease, RunRecord, Write

__all__ = ["GroupCommit"]


class GroupCommit:
    _executor: concurrent.futures.Executor

    def _start_grouping(self) -> None:
        #: Writes waiting for the next group commit (see _flush).
        self._queue: list[Any] = []
        self._queue_lock = threading.Lock()
        self._flushing = False

    # -- the engine's (sql.py) ---------------------------------------------------

    def _call(self, method: Any, /, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _apply(self, write: Write) -> bool:
        raise NotImplementedError

    def _claim(self, claim: Claim) -> Lease | None:
        raise NotImplementedError

    def _insert(self, record: RunRecord) -> bool:
        raise NotImplementedError

    # -- the async writes ----------------------------------------------------------

    async def commit(self, write: Write) -> bool:
        result: bool = await self._grouped(write)
        return result

    async def claim_async(self, run_id: str, owner: str, fingerprint: str) -> Lease | None:
        result: Lease | None = await self._grouped(Claim(run_id, owner, fingerprint))
        return result

    async def create_async(self, record: RunRecord) -> bool:
        result: bool = await self._grouped(record)
        return result

    async def _grouped(self, op: Write | Claim | RunRecord) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._queue_lock:
            self._queue.append((loop, future, op))
            start = not self._flushing
            self._flushing = True
        if start:
            self._executor.submit(self._flush)
        return await future

    def _perform(self, op: Write | Claim | RunRecord) -> Any:
        if isinstance(op, Write):
            return self._apply(op)
        if isinstance(op, Claim):
            return self._claim(op)
        return self._insert(op)

    def _flush(self) -> None:
        with self._queue_lock:
            batch, self._queue = self._queue, []
            self._flushing = False
        batch = [item for item in batch if not item[1].cancelled()]
        outcomes: list[tuple[Any, BaseException | None]] = []
        if len(batch) > 1:
            with contextlib.suppress(Exception):  # then each alone, below
                outcomes = self._call(self._all_of, [item[2] for item in batch])
        if not outcomes:
            outcomes = [self._alone(item[2]) for item in batch]
        # One wake-up per event loop for the whole batch, not one per write:
        # each call_soon_threadsafe writes to the loop's self-pipe.
        by_loop: dict[Any, list[tuple[Any, Any, BaseException | None]]] = {}
        for (loop, future, _), (result, error) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, result, error))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # its event loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle_all, settled)

    def _all_of(
        self, ops: list[Write | Claim | RunRecord]
    ) -> list[tuple[Any, BaseException | None]]:
        with self._transaction():
            return [(outcome, None) for outcome in self._perform_all(ops)]

    def _perform_all(self, ops: list[Write | Claim | RunRecord]) -> list[Any]:
        """Each op's outcome, applied in order (in one transaction)."""
        return [self._perform(op) for op in ops]

    def _alone(self, op: Write | Claim | RunRecord) -> tuple[Any, BaseException | None]:
        """One queued write in its own transaction."""
        try:
            return self._call(self._perform, op), None
        except Exception as e:
            return None, e


def _settle_all(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """Give each write of a batch its outcome (in the batch's order)."""
    for future, result, error in settled:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
