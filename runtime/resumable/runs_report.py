"""`resumable runs list|show`: runs as an operator reads them.

Nothing here imports the user's code: a checkpoint's locals are shown as the
JSON they are stored as, and the line a run stands at is read from its
source file.
"""

from __future__ import annotations

import linecache
import time
from typing import Any

import orjson

from . import codec
from .errors import CheckpointError
from .source import display_path
from .store import RunRecord, Store

__all__ = ["list_json", "list_text", "show_json", "show_text"]


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _summary(record: RunRecord, now: float) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "status": record.status,
        "function": record.function,
        "parent": record.parent,
        "seq": record.seq,
        "line": record.line or None,
        "attempts": record.attempts,
        "reason": record.reason,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "age_seconds": round(now - record.created_at, 3),
    }


def list_json(records: list[RunRecord]) -> bytes:
    now = time.time()
    return orjson.dumps([_summary(r, now) for r in records], option=orjson.OPT_INDENT_2)


def list_text(records: list[RunRecord]) -> str:
    if not records:
        return "no runs"
    now = time.time()
    rows = [("RUN", "STATUS", "FUNCTION", "AGE", "AT", "REASON")]
    for r in records:
        at = f"line {r.line}" if r.line else "-"
        rows.append(
            (r.run_id, r.status, r.function, _age(now - r.created_at), at, (r.reason or "")[:60])
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ).rstrip()


def _checkpoint(record: RunRecord) -> tuple[dict[str, Any] | None, str | None]:
    """(the checkpoint as stored, or None; what is wrong with it, or None)."""
    if record.checkpoint is None:
        return None, None
    try:
        return codec.read_document(record.checkpoint), None
    except CheckpointError as e:
        return None, str(e)


def _source_line(record: RunRecord) -> str:
    if not record.source or not record.line:
        return ""
    text = linecache.getline(record.source, record.line).strip()
    return f"{display_path(record.source)}:{record.line}" + (f": {text}" if text else "")


def _decoded_or_raw(blob: bytes | None) -> Any:
    if blob is None:
        return None
    try:
        return repr(codec.decode(blob))
    except CheckpointError:
        return orjson.loads(blob).get("value")


def show_json(record: RunRecord, store: Store) -> bytes:
    document, problem = _checkpoint(record)
    out = _summary(record, time.time())
    out.update(
        {
            "source": record.source,
            "at": _source_line(record) or None,
            "owner": record.owner,
            "attempt": record.attempt,
            "wake_at": record.wake_at,
            "locals": document.get("locals") if document else None,
            "checkpoint_problem": problem,
            "result": _decoded_or_raw(record.result),
            "error": _decoded_or_raw(record.error),
            "children": [_summary(c, time.time()) for c in _children(record, store)],
        }
    )
    return orjson.dumps(out, option=orjson.OPT_INDENT_2)


def _children(record: RunRecord, store: Store) -> list[RunRecord]:
    return sorted(store.list_runs(parent=record.run_id), key=lambda r: r.created_at)


def show_text(record: RunRecord, store: Store) -> str:
    now = time.time()
    lines = [
        f"run       {record.run_id}",
        f"status    {record.status}" + (f" ({record.reason})" if record.reason else ""),
        f"function  {record.function}"
        + (f"  ({display_path(record.source)})" if record.source else ""),
        f"created   {_age(now - record.created_at)} ago; updated {_age(now - record.updated_at)} ago"
        + (f"; last driven by {record.owner}" if record.owner else ""),
    ]
    if record.parent:
        lines.append(f"parent    {record.parent}")
    if record.attempts:
        lines.append(f"attempts  {record.attempts} failed (this step: {record.attempt})")
    if record.wake_at:
        lines.append(f"next try  in {_age(record.wake_at - now)}")
    document, problem = _checkpoint(record)
    if problem:
        lines.append(f"checkpoint  #{record.seq}: {problem}")
    elif document is not None:
        lines.append(f"at        checkpoint #{record.seq}, {_source_line(record)}")
        local_values = document.get("locals") or {}
        if local_values:
            lines.append("locals")
            for name, value in local_values.items():
                text = orjson.dumps(value).decode()
                lines.append(f"  {name} = {text if len(text) <= 200 else text[:197] + '...'}")
    else:
        lines.append("at        not started")
    if record.result is not None:
        lines.append(f"result    {_decoded_or_raw(record.result)}")
    if record.error is not None:
        lines.append(f"error     {_decoded_or_raw(record.error)}")
    children = _children(record, store)
    if children:
        lines.append("children")
        for child in children:
            lines.append(f"  {child.run_id}  {child.status}  {child.function}")
    return "\n".join(lines)
