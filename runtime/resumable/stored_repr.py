"""Stored values shown as Python reprs, without importing the user's code.

`resumable runs show` reads checkpoints, results and errors as the JSON they
are stored as (docs/checkpoints.md, "Tags"), and shows each value the way
Python would print it: `(1, 2)` for `{"$tuple": [1, 2]}`, `Order(id=7)` for
a dataclass, `ValueError('bad item')` for an exception. Nothing is decoded
into objects, so no class of the user's is imported and no stored text can
run code. What no repr fits is shown as `<tag ...>`.
"""

from __future__ import annotations

import base64
import re
from typing import Any

__all__ = ["hidden_name", "stored_repr", "user_frames"]

#: Names of the compiled code's own variables (the compiler's `Reserved`:
#: temporaries, loop cursors, handled exceptions, ...), not the user's.
_HIDDEN = re.compile(r"^_+(?:[tcxfwiav]\d+|rv)$")
#: Nesting shown; deeper containers are elided (`...`).
_DEPTH = 20
#: Items shown of one container.
_ITEMS = 50


def hidden_name(name: str) -> bool:
    return bool(_HIDDEN.match(name))


def stored_repr(value: Any, depth: int = 0) -> str:
    """The repr of a stored value (plain JSON with `$` tags)."""
    if depth >= _DEPTH and isinstance(value, list | dict):
        return "..."
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    if isinstance(value, list):
        return "[" + _items(value, depth) + "]"
    if not isinstance(value, dict):
        return repr(value)
    if len(value) == 1 or (len(value) == 2 and "$id" in value):
        (tag,) = [k for k in value if k != "$id"] or ["$id"]
        if isinstance(tag, str) and tag.startswith("$"):
            return _tagged(tag, value[tag] if tag != "$id" else value.get("$v"), depth)
    return (
        "{"
        + ", ".join(f"{k!r}: {stored_repr(v, depth + 1)}" for k, v in list(value.items())[:_ITEMS])
        + (", ..." if len(value) > _ITEMS else "")
        + "}"
    )


def _items(values: list[Any], depth: int) -> str:
    shown = ", ".join(stored_repr(v, depth + 1) for v in values[:_ITEMS])
    return shown + (", ..." if len(values) > _ITEMS else "")


def _short(name: Any) -> str:
    """`shop.orders:Order` -> `Order` (the class as its repr names it)."""
    return str(name).rsplit(":", 1)[-1] if isinstance(name, str) else "?"


def _tagged(tag: str, body: Any, depth: int) -> str:
    d = depth + 1
    if tag in ("$v", "$id"):
        return stored_repr(body, d)
    if tag == "$ref":
        return "<the same object as above>"
    if tag == "$tuple" and isinstance(body, list):
        return "(" + _items(body, depth) + ("," if len(body) == 1 else "") + ")"
    if tag in ("$set", "$frozenset") and isinstance(body, list):
        inner = "{" + _items(body, depth) + "}" if body else ""
        return (inner or "set()") if tag == "$set" else f"frozenset({inner})"
    if tag == "$dict" and isinstance(body, list):
        pairs = [p for p in body if isinstance(p, list) and len(p) == 2]
        return "{" + ", ".join(f"{stored_repr(k, d)}: {stored_repr(v, d)}" for k, v in pairs) + "}"
    if tag in ("$int", "$float", "$decimal") and isinstance(body, str):
        return body if tag == "$int" else f"{'Decimal' if tag == '$decimal' else 'float'}({body!r})"
    if tag in ("$bytes", "$bytearray") and isinstance(body, str):
        try:
            raw = repr(base64.b64decode(body, validate=True))
        except ValueError:
            raw = "b'?'"
        return raw if tag == "$bytes" else f"bytearray({raw})"
    if tag == "$exc" and isinstance(body, dict):
        args = body.get("args")
        shown = _items(args, depth) if isinstance(args, list) else ""
        return f"{_short(body.get('type'))}({shown})"
    if tag in ("$dataclass", "$pydantic") and isinstance(body, list) and len(body) >= 2:
        fields = body[1] if isinstance(body[1], dict) else {}
        inner = ", ".join(f"{k}={stored_repr(v, d)}" for k, v in list(fields.items())[:_ITEMS])
        return f"{_short(body[0])}({inner})"
    if tag == "$namedtuple" and isinstance(body, list) and len(body) == 2:
        return f"{_short(body[0])}({_items(body[1], depth) if isinstance(body[1], list) else ''})"
    if tag == "$enum" and isinstance(body, list) and len(body) == 2:
        return f"<{_short(body[0])}.{body[1]}>"
    if tag in ("$class", "$function", "$module") and isinstance(body, str):
        return f"<{tag[1:]} {body}>"
    if tag == "$sub" and isinstance(body, dict):
        base = body.get("value", body.get("items"))
        return f"{_short(body.get('class'))}({stored_repr(base, d)})"
    if tag == "$codec" and isinstance(body, list) and len(body) == 2:
        return f"{_short(body[0])}({stored_repr(body[1], d)})"
    if tag in ("$range", "$complex", "$fraction", "$timedelta") and isinstance(body, list):
        name = {"$fraction": "Fraction", "$timedelta": "timedelta"}.get(tag, tag[1:])
        return f"{name}({', '.join(stored_repr(v, d) for v in body)})"
    if tag in ("$datetime", "$date", "$time") and isinstance(body, list):
        parts = [v for v in body if isinstance(v, int) and not isinstance(v, bool)]
        return f"{tag[1:]}({', '.join(map(str, parts))})"
    if tag == "$uuid":
        return f"UUID({(body[0] if isinstance(body, list) and body else body)!r})"
    if tag == "$path" and isinstance(body, list) and len(body) == 2:
        return f"{body[0]}({body[1]!r})"
    if tag.startswith("$loop."):
        return "<a loop's position>"
    text = repr(body)
    return f"<{tag[1:]} {text if len(text) <= 80 else text[:77] + '...'}>"


def user_frames(traceback: str, package_dir: str) -> list[str]:
    """The frames of a stored traceback's text that are not resumable's own
    (the driver, the runtime): the user's code, each `File ...` line with
    the source line under it."""
    lines = traceback.splitlines()
    out: list[str] = []
    keep = False
    for line in lines:
        if line.startswith("  File "):
            match = re.match(r'  File "([^"]*)"', line)
            keep = not (match and match.group(1).startswith(package_dir))
        if keep and line.strip():
            out.append(line)
    return out
