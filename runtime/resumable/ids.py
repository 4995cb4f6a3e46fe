"""Run ids: what a user may choose, how child runs are named, how ids print.

    check_run_id("order-456")      # fine: 1 to 200 printable characters, no "/"
    child_id("order-456", 3, 0)    # "order-456/3.0": the first child started by step 3
    shown("bad\\nid")               # 'bad\\nid': escaped for a terminal

User ids cannot contain "/", so they never reach the namespace of child
ids (`<parent>/<step>.<i>`): no id a user passes can name another run's
child, and no child can be mistaken for a run a user started.
"""

from __future__ import annotations

__all__ = ["MAX_RUN_ID", "check_run_id", "child_id", "shown"]

MAX_RUN_ID = 200

#: Characters that reorder text on screen (bidirectional controls).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_run_id(run_id: object) -> str:
    """A run id a user passes (to run, call, dispatch). Raises ValueError."""
    if not isinstance(run_id, str):
        raise TypeError(f"a run id is a str, not {type(run_id).__name__} ({run_id!r:.60})")
    if not run_id:
        raise ValueError("a run id cannot be empty: pass run_id=None for a new random id")
    if len(run_id) > MAX_RUN_ID:
        raise ValueError(
            f"run id {run_id[:40]!r}... is {len(run_id)} characters long; at most {MAX_RUN_ID}"
        )
    if "/" in run_id:
        raise ValueError(
            f"run id {run_id!r} contains '/', which only the ids of child runs contain "
            "(<parent>/<step>.<i>): use another separator, such as '-' or ':'"
        )
    if run_id.isprintable() and _BIDI.isdisjoint(run_id):
        return run_id
    bad = next((c for c in run_id if not c.isprintable() or c in _BIDI), None)
    if bad is not None:
        raise ValueError(
            f"run id {run_id!r} contains the character {bad!r} (U+{ord(bad):04X}): run ids "
            "are printable text, with no control, line break or bidirectional characters"
        )
    return run_id


def child_id(parent: str, step: int, n: int) -> str:
    """The id of the n-th child run started by step `step` of run `parent`."""
    return f"{parent}/{step}.{n}"


def shown(text: str | None) -> str:
    """A stored id or name, safe to print on one line of a terminal: control,
    line-break and bidirectional characters escaped."""
    if text is None:
        return "-"
    if all(c.isprintable() and c not in _BIDI for c in text):
        return text
    return "".join(
        c if c.isprintable() and c not in _BIDI else c.encode("unicode_escape").decode("ascii")
        for c in text
    )
