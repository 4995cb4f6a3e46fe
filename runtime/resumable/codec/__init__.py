"""The checkpoint codec: Python values to JSON bytes (orjson) and back, exactly.

    encode(value) -> bytes            decode(data) -> value
    encode_tree(value) -> (tree, plain)   decode_tree(tree, plain=...) -> value

A value that is already plain JSON (plain.py) is written by orjson as it is
and read back without a walk; any other goes through encoder.py / decoder.py
(tags like `{"$tuple": [...]}`, identity through `$id`/`$ref`). Which path
was taken is recorded next to the tree (`"plain": true`).

The format is versioned (FORMAT_VERSION). Version 1 (the first checkpoints)
still decodes. Decoding is bounded by `Limits` (size, nesting, digits) and
raises CheckpointError for anything malformed or hostile.

Layout: registry.py (class names, aliases, registered codecs), kinds.py
(knowledge shared by both directions), plain.py, encoder.py, decoder.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import CheckpointError, SerializationError
from .decoder import Decoder
from .encoder import Encoder, Unencodable, type_name
from .kinds import traceback_text
from .plain import is_plain
from .registry import (
    qualified_name,
    register_alias,
    register_codec,
    register_internal,
    resolve,
    resolve_class,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FORMAT_VERSION",
    "Limits",
    "Unencodable",
    "decode",
    "decode_tree",
    "decode_value",
    "encode",
    "encode_fields",
    "encode_tree",
    "encode_value",
    "qualified_name",
    "register_alias",
    "register_codec",
    "register_internal",
    "resolve",
    "resolve_class",
    "traceback_text",
    "type_name",
]

#: The checkpoint format written now; every earlier one still decodes.
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)


@dataclass(frozen=True)
class Limits:
    """Bounds on what is encoded and decoded.

    max_depth: JSON nesting of a value (orjson itself refuses beyond 254);
    max_bytes: size of an encoded value or checkpoint; max_int_digits: digits
    of one integer or decimal."""

    max_depth: int = 200
    max_bytes: int = 64 * 1024 * 1024
    max_int_digits: int = 100_000


DEFAULT_LIMITS = Limits()


def encode_tree(value: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, bool]:
    """(JSON tree, plain): `value` itself when it is plain JSON. Raises Unencodable."""
    if is_plain(value, limits.max_depth):
        return value, True
    return encode_value(value, limits), False


def encode_value(value: Any, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The tagged JSON tree of `value` (the general path). Raises Unencodable."""
    holder: list[Any] = [None]
    try:
        holder[0] = Encoder(limits.max_depth).enc(value, holder, 0, 1)
    except RecursionError:
        raise Unencodable(value, "it is nested too deeply") from None
    return holder[0]


def encode_fields(
    fields: dict[str, Any], limits: Limits = DEFAULT_LIMITS
) -> tuple[dict[str, Any], bool]:
    """Encode named values (a checkpoint's locals) sharing one identity memo.

    On failure the Unencodable's `variable` names the field."""
    if is_plain(fields, limits.max_depth):
        return fields, True
    enc = Encoder(limits.max_depth)
    out: dict[str, Any] = {}
    for name, value in fields.items():
        out[name] = None
        try:
            out[name] = enc.enc(value, out, name, 2)
        except Unencodable as e:
            e.variable = name
            raise
        except RecursionError:
            error = Unencodable(value, "it is nested too deeply")
            error.variable = name
            raise error from None
    return out, False


def decode_tree(
    tree: Any,
    *,
    plain: bool = False,
    imports: frozenset[str] = frozenset(),
    limits: Limits = DEFAULT_LIMITS,
    version: int = FORMAT_VERSION,
) -> Any:
    """Decode a tree from `encode_tree`. `imports`: modules a `$module`
    reference may import (the compiled function's own imports)."""
    if plain:
        return tree
    decoder = Decoder(
        imports=imports,
        max_depth=limits.max_depth,
        max_int_digits=limits.max_int_digits,
        version=version,
    )
    try:
        return decoder.dec(tree)
    except RecursionError:
        raise CheckpointError("checkpoint is nested too deeply") from None


def decode_value(
    tree: Any, imports: frozenset[str] = frozenset(), limits: Limits = DEFAULT_LIMITS
) -> Any:
    """Decode a tagged tree (the general path)."""
    return decode_tree(tree, imports=imports, limits=limits)


def dumps(document: Any, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """orjson.dumps with the size limit, as SerializationError."""
    try:
        data = orjson.dumps(document)
    except orjson.JSONEncodeError as e:
        raise SerializationError(f"the value cannot be written as JSON: {e}") from None
    if len(data) > limits.max_bytes:
        raise SerializationError(
            f"the value is {len(data)} bytes encoded, more than the limit of {limits.max_bytes}"
        )
    return data


def loads(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """orjson.loads with the size limit, as CheckpointError."""
    if len(data) > limits.max_bytes:
        raise CheckpointError(
            f"checkpoint is {len(data)} bytes, more than the limit of {limits.max_bytes}"
        )
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint is not valid JSON: {e}") from None


def encode(value: Any, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """A value as JSON bytes: `{"v": 2, "plain": bool, "value": tree}`.

    Raises SerializationError naming the path inside the value."""
    try:
        tree, plain = encode_tree(value, limits)
    except Unencodable as e:
        raise SerializationError(f"value{e.where()}: {e.reason}") from None
    return dumps({"v": FORMAT_VERSION, "plain": plain, "value": tree}, limits)


def decode(
    data: bytes, limits: Limits = DEFAULT_LIMITS, imports: frozenset[str] = frozenset()
) -> Any:
    """Decode bytes from `encode`. Raises CheckpointError."""
    document = loads(data, limits)
    version = document.get("v") if type(document) is dict else None
    if version not in SUPPORTED_VERSIONS or "value" not in document:
        raise CheckpointError(f"not an encoded value of a known format version (v={version!r:.20})")
    plain = document.get("plain", False)
    if type(plain) is not bool:
        raise CheckpointError("malformed encoded value: 'plain' is not a boolean")
    return decode_tree(
        document["value"], plain=plain, imports=imports, limits=limits, version=version
    )
