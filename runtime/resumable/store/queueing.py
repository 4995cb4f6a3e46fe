"""The SQL of queues (queues.py): creating queued or deduplicated runs, and
claiming a queue's runs within its limits. Mixed into `SQLStore` (sql.py),
whose engine hooks it uses; the dialects differ only in

    _FOR_UPDATE     the queue's row is locked while its budget is counted and
                    spent (PostgreSQL: FOR UPDATE; SQLite's BEGIN IMMEDIATE
                    already keeps every other writer out)
    _SKIP_LOCKED    candidate rows another transaction has locked are skipped
                    (PostgreSQL: FOR UPDATE SKIP LOCKED): the budget is safe
                    under the queue's lock, so a row busy elsewhere is simply
                    not taken this time
    _clock()        the time of the rate window (PostgreSQL: the database's)

What counts as a run driven now: a `running` top-level run of the queue
under a live owner: SQLite, its OS lock is held (`Ownership.held`, asked
inside the transaction, so no other claimer takes a lock meanwhile);
PostgreSQL, a lease that has not expired. Each claim records a start per
run taken in `queue_starts` (for the rate window), and old starts are
deleted as the window passes them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from ..queues import Queue
from .base import (
    ACTIVE,
    SUMMARY_FIELDS,
    QueueClaim,
    RunRecord,
    RunSummary,
    Store,
    damage,
    storable_text,
)

__all__ = ["UNENDED", "QueueQueries"]

#: The statuses in which a run holds its dedup key.
UNENDED = ("pending", "running", "waiting", "blocked")
_PAGE = 100


class QueueQueries(Store):
    """Queue queries over an SQL engine's hooks (see the module docstring)."""

    _FOR_UPDATE = ""
    _SKIP_LOCKED = ""
    _UNOWNED = ""
    _IS = "IS NOT DISTINCT FROM"

    # -- the engine's hooks (SQLStore's) ---------------------------------------

    def _call(self, method: Any, /, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _insert(self, record: RunRecord) -> bool:
        raise NotImplementedError

    def _select(self, fields: Sequence[str]) -> str:
        raise NotImplementedError

    @property
    def _runnable_sql(self) -> str:
        raise NotImplementedError

    def _clock(self) -> float:
        return time.time()

    # -- creating runs ----------------------------------------------------------

    def create_run(self, record: RunRecord, queue: Queue | None = None) -> str | None:
        result: str | None = self._call(self._create_run, record, queue)
        return result

    def _create_run(self, record: RunRecord, queue: Queue | None) -> str | None:
        if queue is None and record.dedup_key is None:
            return None if self._insert(record) else record.run_id
        with self._transaction():
            if queue is not None:
                self._keep_queue(queue)
            for _ in range(3):
                if self._insert(record):
                    return None
                found = self._exec(
                    "SELECT run_id FROM runs WHERE run_id = ?", (record.run_id,)
                ).fetchone()
                if found is not None:
                    return record.run_id
                holder = self._holder(record.dedup_key)
                if holder is not None:
                    return holder
                # The holder ended between the two statements: try again.
        raise RuntimeError(f"run {record.run_id!r} could not be created (dedup key contention)")

    def _keep_queue(self, queue: Queue) -> None:
        rate_n, period = queue.rate if queue.rate is not None else (None, None)
        same = " AND ".join(
            f"queues.{c} {self._IS} excluded.{c}"
            for c in ("concurrency", "rate_limit", "rate_period")
        )
        self._exec(
            "INSERT INTO queues (name, concurrency, rate_limit, rate_period, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "concurrency = excluded.concurrency, rate_limit = excluded.rate_limit, "
            f"rate_period = excluded.rate_period, updated_at = excluded.updated_at WHERE NOT ({same})",
            (queue.name, queue.concurrency, rate_n, period, time.time()),
        )

    def dedup_holder(self, dedup_key: str) -> str | None:
        result: str | None = self._call(self._holder, dedup_key)
        return result

    def _holder(self, dedup_key: str | None) -> str | None:
        row = self._exec(
            f"SELECT run_id FROM runs WHERE dedup_key = ? AND status IN ({_marks(UNENDED)}) "
            "LIMIT 1",
            (dedup_key, *UNENDED),
        ).fetchone()
        return None if row is None else str(row[0])

    # -- claiming ---------------------------------------------------------------

    def runnable_queues(self, now: float, functions: Sequence[str]) -> set[str]:
        result: set[str] = self._call(self._runnable_queues, now, functions)
        return result

    def _runnable_queues(self, now: float, functions: Sequence[str]) -> set[str]:
        names = [f for f in functions if type(f) is str]
        if not names:
            return set()
        sql = (
            f"SELECT DISTINCT queue FROM runs WHERE {self._runnable_sql} "
            f"AND queue IS NOT NULL AND function IN ({_marks(names)})"
        )
        return {row[0] for row in self._exec(sql, (now, *names)) if type(row[0]) is str}

    def claim_queued(
        self, queue: str, now: float, functions: Sequence[str], owner: str, limit: int
    ) -> QueueClaim:
        taken: list[str] = []
        try:
            result: QueueClaim = self._call(
                self._claim_queued, queue, now, functions, owner, limit, taken
            )
        except BaseException:
            for run_id in taken:  # the transaction did not commit: not ours
                self.ownership.release(run_id)
            raise
        return result

    def _claim_queued(
        self,
        queue: str,
        now: float,
        functions: Sequence[str],
        owner: str,
        limit: int,
        taken: list[str],
    ) -> QueueClaim:
        for run_id in taken:  # a transaction tried again (a deadlock): start afresh
            self.ownership.release(run_id)
        taken.clear()
        names = [f for f in functions if type(f) is str]
        if not names or limit <= 0:
            return QueueClaim()
        with self._transaction():
            row = self._exec(
                "SELECT concurrency, rate_limit, rate_period FROM queues WHERE name = ?"
                + self._FOR_UPDATE,
                (queue,),
            ).fetchone()
            concurrency, rate_n, period = row if row is not None else (0, 0, 0.0)
            budget, held_back = limit, None
            if _count(concurrency):
                free = concurrency - self._running(queue)
                if free < budget:
                    budget, held_back = free, now
            clock = first = 0.0
            if _count(rate_n) and _seconds(period):
                clock = self._clock()
                self._exec(
                    "DELETE FROM queue_starts WHERE queue = ? AND started_at <= ?",
                    (queue, clock - period),
                )
                count, first = self._exec(
                    "SELECT COUNT(*), MIN(started_at) FROM queue_starts WHERE queue = ?", (queue,)
                ).fetchone()
                left = rate_n - int(count)
                if left < budget:
                    budget = left
                    held_back = (first if type(first) in (int, float) else clock) + period
            if budget <= 0:
                return QueueClaim(retry_at=held_back)
            damaged, functions_of = self._take(queue, now, names, owner, budget, taken)
            if _count(rate_n) and _seconds(period) and taken:
                for _ in taken:
                    self._exec(
                        "INSERT INTO queue_starts (queue, started_at) VALUES (?, ?)",
                        (queue, clock),
                    )
                if held_back is not None and type(first) not in (int, float):
                    held_back = clock + period
        pairs = tuple((run_id, functions_of[run_id]) for run_id in taken)
        return QueueClaim(pairs, tuple(damaged), held_back if len(taken) >= budget else None)

    def _take(
        self,
        queue: str,
        now: float,
        names: list[str],
        owner: str,
        budget: int,
        taken: list[str],
    ) -> tuple[list[RunSummary], dict[str, str]]:
        """Own and claim up to `budget` runnable runs of the queue, in order."""
        damaged: list[RunSummary] = []
        functions_of: dict[str, str] = {}
        offset = 0
        while len(taken) < budget:
            rows = list(
                self._exec(
                    f"SELECT {self._select(SUMMARY_FIELDS)} FROM runs WHERE {self._runnable_sql} "
                    f"AND queue = ? AND function IN ({_marks(names)}) "
                    f"ORDER BY priority DESC, created_at, rowid LIMIT ? OFFSET ?"
                    + self._SKIP_LOCKED,
                    (now, queue, *names, _PAGE, offset),
                )
            )
            offset += len(rows)
            for row in rows:
                summary = _summary(row)
                if summary.damaged is not None:
                    damaged.append(summary)
                    continue
                run_id = summary.run_id
                if not self.ownership.acquire(run_id):
                    continue  # driven by another process: counted already
                taken.append(run_id)
                claimed = self._exec(
                    "UPDATE runs SET status = 'running', generation = generation + 1, owner = ?, "
                    f"wake_at = NULL, updated_at = ? WHERE run_id = ? AND status IN ({_marks(ACTIVE)})",
                    (storable_text(owner), time.time(), run_id, *ACTIVE),
                ).rowcount
                if claimed != 1:
                    taken.pop()
                    self.ownership.release(run_id)
                    continue
                functions_of[run_id] = summary.function
                if len(taken) >= budget:
                    break
            if len(rows) < _PAGE:
                break
        return damaged, functions_of

    def _running(self, queue: str) -> int:
        """The queue's runs driven now by a live owner."""
        where = "queue = ? AND status = 'running'"  # dispatched child runs too
        if self._UNOWNED:  # leases: those not expired
            row = self._exec(
                f"SELECT COUNT(*) FROM runs WHERE {where} AND NOT ({self._UNOWNED})", (queue,)
            ).fetchone()
            return int(row[0])
        ids = [r[0] for r in self._exec(f"SELECT run_id FROM runs WHERE {where}", (queue,))]
        return sum(1 for run_id in ids if type(run_id) is str and self.ownership.held(run_id))


def _count(value: Any) -> bool:
    return type(value) is int and value >= 1


def _seconds(value: Any) -> bool:
    return type(value) in (int, float) and 0 < value < 1e12


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _summary(row: tuple[Any, ...]) -> RunSummary:
    values = dict(zip(SUMMARY_FIELDS, row[1:], strict=True))
    damaged = damage(values)
    return RunSummary(**values, rowid=row[0], damaged=damaged)
