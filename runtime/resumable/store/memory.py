"""`memory://`: runs in a dict, for tests and examples; gone with the process.

Records are copied in and out, as a real store would, so nothing outside
the store can change what it holds."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

from .base import PENDING, RUNNING, WAITING, RunRecord, Store

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    def __init__(self) -> None:
        self.url = "memory://"
        self.runs: dict[str, RunRecord] = {}
        self.owned: set[str] = set()

    def create(self, record: RunRecord) -> bool:
        if record.run_id in self.runs:
            return False
        now = time.time()
        self.runs[record.run_id] = dataclasses.replace(record, created_at=now, updated_at=now)
        return True

    def get(self, run_id: str) -> RunRecord | None:
        record = self.runs.get(run_id)
        return None if record is None else dataclasses.replace(record)

    def update(
        self, run_id: str, fields: dict[str, Any], *, when: Iterable[str] | None = None
    ) -> bool:
        record = self.runs.get(run_id)
        if record is None or (when is not None and record.status not in when):
            return False
        self.runs[run_id] = dataclasses.replace(record, **fields, updated_at=time.time())
        return True

    def list_runs(
        self,
        *,
        statuses: Iterable[str] | None = None,
        parent: str | None = None,
        top_only: bool = False,
        limit: int | None = None,
    ) -> list[RunRecord]:
        wanted = None if statuses is None else set(statuses)
        out = [
            dataclasses.replace(r)
            for r in self.runs.values()
            if (wanted is None or r.status in wanted)
            and (parent is None or r.parent == parent)
            and not (top_only and r.parent is not None)
        ]
        out.sort(key=lambda r: r.created_at, reverse=True)
        return out[:limit] if limit is not None else out

    def runnable(self, now: float, limit: int) -> list[RunRecord]:
        out = [
            dataclasses.replace(r)
            for r in self.runs.values()
            if r.parent is None
            and (
                r.status in (PENDING, RUNNING)
                or (r.status == WAITING and (r.wake_at is None or r.wake_at <= now))
            )
        ]
        out.sort(key=lambda r: r.created_at)
        return out[:limit]

    def lock(self, run_id: str) -> bool:
        if run_id in self.owned:
            return False
        self.owned.add(run_id)
        return True

    def unlock(self, run_id: str) -> None:
        self.owned.discard(run_id)
