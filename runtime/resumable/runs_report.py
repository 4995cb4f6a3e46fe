"""`resumable runs list|show`: runs as an operator reads them.

Nothing here imports the user's code: a checkpoint's locals, a result and an
error are shown as Python reprs of the JSON they are stored as
(stored_repr.py), never decoded into objects; the compiled code's own
variables are left out, and an error's traceback shows the user's frames,
not resumable's. The line a run stands at is read from its source file. Listing reads only the columns it shows (never a checkpoint).
Stored text is printed escaped (ids with line breaks or bidirectional
characters cannot disguise themselves), and a row that cannot be read as a
run is shown as damaged, with what is wrong.
"""

from __future__ import annotations

import linecache
import os
import time
from typing import Any

import orjson

from . import codec
from .await_place import await_place
from .errors import CheckpointError
from .ids import shown
from .source import display_path
from .store import RunRecord, RunSummary, Store
from .stored_repr import hidden_name, stored_repr, user_frames

__all__ = ["list_json", "list_text", "show_json", "show_text"]

#: Nesting shown of a stored value; deeper parts are elided.
_SHOWN_DEPTH = 20
#: Child runs `show` lists unless told (`--children`).
CHILDREN_SHOWN = 20
#: resumable's own source files (their frames are not shown in tracebacks).
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _status(record: RunRecord | RunSummary) -> str:
    return "damaged" if record.damaged is not None else record.status


def _summary(record: RunRecord | RunSummary, now: float) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "status": _status(record),
        "function": record.function,
        "parent": record.parent,
        "seq": record.seq,
        "line": record.line or None,
        "attempts": record.attempts,
        "reason": record.reason,
        "damaged": record.damaged,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "age_seconds": round(now - record.created_at, 3),
    }


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2)


def list_json(records: list[RunSummary]) -> bytes:
    now = time.time()
    return _dumps([_summary(r, now) for r in records])


def list_text(records: list[RunSummary]) -> str:
    if not records:
        return "no runs"
    now = time.time()
    rows = [("RUN", "STATUS", "FUNCTION", "AGE", "AT", "REASON")]
    for r in records:
        at = f"line {r.line}" if r.line else "-"
        reason = r.reason if r.damaged is None else r.damaged
        rows.append(
            (
                shown(r.run_id),
                _status(r),
                shown(r.function),
                _age(now - r.created_at),
                at,
                shown(reason or "")[:60],
            )
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
    return f"{display_path(record.source)}:{record.line}" + (f": {shown(text)}" if text else "")


def _shallow(value: Any, depth: int = 0) -> Any:
    """A stored JSON value with what is nested beyond _SHOWN_DEPTH elided."""
    if depth >= _SHOWN_DEPTH and isinstance(value, dict | list):
        return "..."
    if isinstance(value, dict):
        return {k: _shallow(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_shallow(v, depth + 1) for v in value]
    return value


def _decoded_or_raw(blob: bytes | None) -> Any:
    if blob is None:
        return None
    try:
        return repr(codec.decode(blob))
    except CheckpointError:
        try:
            return _shallow(orjson.loads(blob).get("value"))
        except (orjson.JSONDecodeError, AttributeError):
            return "(unreadable)"


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
            "locals": _shallow(document.get("locals")) if document else None,
            "checkpoint_problem": problem,
            "result": _decoded_or_raw(record.result),
            "error": _decoded_or_raw(record.error),
            "children": [_summary(c, time.time()) for c in _children(record, store)],
        }
    )
    return _dumps(out)


def _children(record: RunRecord, store: Store) -> list[RunSummary]:
    return sorted(store.list_runs(parent=record.run_id), key=lambda r: (r.created_at, r.rowid))


def _stored_value(blob: bytes) -> Any:
    """The value of a stored document (result, error) as JSON, or a note."""
    try:
        return codec.read_document(blob).get("value")
    except CheckpointError as e:
        return {"$unreadable": str(e)}


def _error_lines(blob: bytes) -> list[str]:
    """An error as `Type(args)`, its chain, and its traceback's user frames."""
    value = _stored_value(blob)
    lines = [f"error     {shown(stored_repr(value))}"]
    exc = value.get("$exc") if isinstance(value, dict) else None
    seen = 0
    while isinstance(exc, dict) and seen < 5:
        traceback = exc.get("traceback")
        if isinstance(traceback, str):
            frames = user_frames(traceback, _PACKAGE_DIR)
            if frames:
                lines.append("  traceback (most recent call last; resumable's frames left out):")
                lines += [f"  {shown(f)}" for f in frames[-20:]]
        cause = exc.get("cause") if exc.get("cause") is not None else exc.get("context")
        if cause is None or (exc.get("suppress_context") and exc.get("cause") is None):
            break
        how = "the direct cause" if exc.get("cause") is not None else "raised while handling"
        lines.append(f"  {how}: {shown(stored_repr(cause))}")
        exc = cause.get("$exc") if isinstance(cause, dict) else None
        seen += 1
    return lines


def _locals_lines(values: Any) -> list[str]:
    if not isinstance(values, dict) or not values:
        return []
    own = [name for name in values if isinstance(name, str) and hidden_name(name)]
    lines = ["locals"]
    for name, value in values.items():
        if name in own:
            continue
        text = stored_repr(value)
        text = text if len(text) <= 200 else text[:197] + "..."
        lines.append(f"  {shown(str(name))} = {shown(text)}")
    if own:
        lines.append(f"  ({len(own)} of the compiled code's own, not shown: --json has them)")
    return lines if len(lines) > 1 else []


def _children_lines(children: list[RunSummary], limit: int | None) -> list[str]:
    if not children:
        return []
    counts: dict[str, int] = {}
    for child in children:
        counts[_status(child)] = counts.get(_status(child), 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    lines = [f"children  {len(children)} ({tally})"]
    shown_children = children if limit is None else children[:limit]
    width = max(len(shown(c.run_id)) for c in shown_children) if shown_children else 0
    status_width = max(len(_status(c)) for c in shown_children) if shown_children else 0
    for child in shown_children:
        lines.append(
            f"  {shown(child.run_id).ljust(width)}  {_status(child).ljust(status_width)}  "
            f"{shown(child.function)}"
        )
    if len(shown_children) < len(children):
        lines.append(
            f"  ... {len(children) - len(shown_children)} more: --children N shows N, "
            "--children all shows every one"
        )
    return lines


def show_text(record: RunRecord, store: Store, *, children: int | None = CHILDREN_SHOWN) -> str:
    now = time.time()
    lines = [
        f"run       {shown(record.run_id)}",
        f"status    {_status(record)}" + (f" ({shown(record.reason)})" if record.reason else ""),
        f"function  {shown(record.function)}"
        + (f"  ({shown(display_path(record.source))})" if record.source else ""),
        f"created   {_age(now - record.created_at)} ago; updated {_age(now - record.updated_at)} ago"
        + (f"; last driven by {shown(record.owner)}" if record.owner else ""),
    ]
    if record.damaged is not None:
        lines.append(f"damaged   {shown(record.damaged)}")
    if record.parent:
        lines.append(f"parent    {shown(record.parent)}")
    if record.attempts:
        # The counts are of failures tried again (parks): a run that then
        # failed for good failed once more than that.
        lines.append(
            f"retried   {record.attempts} time{'s' * (record.attempts != 1)} after a failure "
            f"(this step: {record.attempt})"
        )
    if record.wake_at:
        lines.append(f"next try  in {_age(record.wake_at - now)}")
    document, problem = _checkpoint(record)
    if problem:
        lines.append(f"checkpoint  #{record.seq}: {problem}")
    elif document is not None:
        place = await_place(
            record.source,
            record.function,
            record.line,
            document,
            active=record.status not in ("completed", "cancelled"),
        )
        lines.append(f"at        checkpoint #{record.seq}, {place}")
        lines += _locals_lines(document.get("locals"))
    else:
        lines.append("at        not started")
    if record.result is not None:
        lines.append(f"result    {shown(stored_repr(_stored_value(record.result)))}")
    if record.error is not None:
        lines += _error_lines(record.error)
    lines += _children_lines(_children(record, store), children)
    return "\n".join(lines)
