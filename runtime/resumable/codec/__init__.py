"""The checkpoint codec: Python values to JSON bytes (orjson) and back, exactly.

    encode(value) -> bytes                      decode(bytes) -> value
    encode_document(meta, key, value) -> (bytes, plain)
    decode_document(bytes, key) -> (document, value)

A value that is already plain JSON (plain.py) is written and read by orjson
as it is; any other goes through encoder.py / decoder.py (tags like
`{"$tuple": [...]}`, identity through `$id`/`$ref`). Which path was taken is
recorded in the document (`"plain": true`).

The format is versioned (FORMAT_VERSION); every earlier version still
decodes. A version-2 document starts with `"crc": "89abcdef"`, the CRC-32 of
the document without that member: a flipped byte or a truncation is
detected. Decoding is bounded by `Limits` (size, nesting, digits) and raises
CheckpointError for anything malformed or hostile.

Layout: registry.py (class names, aliases, registered codecs), kinds.py
(knowledge shared by both directions), plain.py, encoder.py, decoder.py.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import CheckpointError, SerializationError
from .decoder import Decoder
from .encoder import Encoder, Unencodable, type_name
from .kinds import traceback_text
from .plain import dumps_plain, seal
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
    "SUPPORTED_VERSIONS",
    "Limits",
    "Unencodable",
    "decode",
    "decode_document",
    "decode_tree",
    "decode_value",
    "dumps",
    "encode",
    "encode_document",
    "encode_fields",
    "encode_tree",
    "encode_value",
    "loads",
    "qualified_name",
    "read_document",
    "register_alias",
    "register_codec",
    "register_internal",
    "resolve",
    "resolve_class",
    "seal",
    "traceback_text",
    "type_name",
]

#: The format written now; every earlier one still decodes.
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)


@dataclass(frozen=True)
class Limits:
    """Bounds on what is encoded and decoded.

    max_depth: nesting of what the codec walks -- every value it encodes, and
    the tagged values it decodes (a plain document is parsed by orjson alone,
    which refuses nesting beyond 1024 levels); max_bytes: size of an encoded
    document; max_int_digits: digits of one integer or decimal."""

    max_depth: int = 200
    max_bytes: int = 64 * 1024 * 1024
    max_int_digits: int = 100_000


DEFAULT_LIMITS = Limits()


# -- trees -----------------------------------------------------------------------


def encode_value(value: Any, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The tagged JSON tree of `value` (the general path). Raises Unencodable."""
    holder: list[Any] = [None]
    try:
        holder[0] = Encoder(limits.max_depth, limits.max_int_digits).enc(value, holder, 0, 1)
    except RecursionError:
        raise Unencodable(value, "it is nested too deeply") from None
    return holder[0]


def encode_named(fields: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The tagged tree of named values (a checkpoint's locals), sharing one
    identity memo. On failure the Unencodable's `variable` names the field."""
    enc = Encoder(limits.max_depth, limits.max_int_digits)
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
    return out


def encode_tree(value: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, bool]:
    """(JSON tree, plain): `value` itself when it is plain JSON. Raises Unencodable."""
    if dumps_plain({"value": value}, "value", limits.max_depth) is not None:
        return value, True
    return encode_value(value, limits), False


def encode_fields(fields: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> tuple[Any, bool]:
    """`encode_tree` for named values (see `encode_named`)."""
    if dumps_plain({"value": fields}, "value", limits.max_depth) is not None:
        return fields, True
    return encode_named(fields, limits), False


def decode_tree(
    tree: Any,
    *,
    plain: bool = False,
    imports: frozenset[str] = frozenset(),
    limits: Limits = DEFAULT_LIMITS,
    version: int = FORMAT_VERSION,
) -> Any:
    """Decode a tree. `imports`: modules a `$module` reference may import (the
    compiled function's own imports)."""
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


# -- documents (bytes) -------------------------------------------------------------


def dumps(document: Any, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """orjson.dumps with the size limit, as SerializationError."""
    try:
        data = orjson.dumps(document)
    except orjson.JSONEncodeError as e:
        raise SerializationError(f"the value cannot be written as JSON: {e}") from None
    _check_size(data, limits)
    return data


def _check_size(data: bytes, limits: Limits) -> None:
    if len(data) > limits.max_bytes:
        raise SerializationError(
            f"the value is {len(data)} bytes encoded, more than the limit of {limits.max_bytes}"
        )


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


def encode_document(
    meta: dict[str, Any],
    key: str,
    value: Any,
    *,
    named: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[bytes, bool]:
    """The JSON bytes of `meta` plus `"plain"` and `key`: the encoded `value`
    (`named`: a dict of named values; errors name the variable). `meta` is
    filled in place: pass a new dict.

    Returns (bytes, plain). Raises Unencodable, or SerializationError when
    the bytes exceed the limit."""
    meta["plain"] = True
    meta[key] = value
    data = dumps_plain(meta, key, limits.max_depth)
    if data is not None:
        if len(data) > limits.max_bytes:
            _check_size(data, limits)
        return data, True
    meta["plain"] = False
    meta[key] = encode_named(value, limits) if named else encode_value(value, limits)
    return seal(dumps(meta, limits)), False


_OPEN_CRC = zlib.crc32(b"{")


def _sealed(data: bytes, crc: Any) -> bool:
    """Whether `data` starts with the "crc" member `seal` writes, which is
    the parsed `crc`, and the rest of the document matches it."""
    if type(crc) is not str or len(crc) != 8 or data[:8] != b'{"crc":"':
        return False
    try:
        expected = int(crc, 16)
    except ValueError:
        return False
    return (
        zlib.crc32(data[18:] if len(data) < 65536 else memoryview(data)[18:], _OPEN_CRC) == expected
    )


def read_document(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, verify: bool = True
) -> dict[str, Any]:
    """A document's JSON, checksum verified (unless `verify` is False), its
    payload left as stored: nothing is decoded, no class is looked up."""
    if len(data) > limits.max_bytes:
        raise CheckpointError(
            f"checkpoint is {len(data)} bytes, more than the limit of {limits.max_bytes}"
        )
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint is not valid JSON: {e}") from None
    version = document.get("v") if type(document) is dict else None
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise CheckpointError(f"not a document of a known format version (v={version!r:.20})")
    if verify and version >= 2 and not _sealed(data, document.get("crc")):
        raise CheckpointError("checkpoint is corrupt: its checksum does not match its contents")
    return document


def decode_document(
    data: bytes,
    key: str,
    *,
    imports: frozenset[str] = frozenset(),
    limits: Limits = DEFAULT_LIMITS,
    verify: bool = True,
) -> tuple[dict[str, Any], Any]:
    """(document, decoded value at `key`) of bytes from `encode_document`, in
    any supported format version. `verify=False` skips the checksum, for bytes
    this process has just written. Raises CheckpointError."""
    document = read_document(data, limits, verify=verify)
    if key not in document:
        raise CheckpointError(f"malformed document: it has no {key!r}")
    version = document["v"]
    plain = document.get("plain", False)
    if plain is True:
        return document, document[key]  # plain JSON: nothing to decode
    if plain is not False:
        raise CheckpointError("malformed document: 'plain' is not a boolean")
    value = decode_tree(document[key], plain=False, imports=imports, limits=limits, version=version)
    return document, value


def encode(value: Any, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """A value as JSON bytes: `{"v": 2, "plain": bool, "value": tree}`.

    Raises SerializationError naming the path inside the value."""
    try:
        return encode_document({"v": FORMAT_VERSION}, "value", value, limits=limits)[0]
    except Unencodable as e:
        raise SerializationError(f"value{e.where()}: {e.reason}") from None


def decode(
    data: bytes,
    limits: Limits = DEFAULT_LIMITS,
    imports: frozenset[str] = frozenset(),
    *,
    verify: bool = True,
) -> Any:
    """Decode bytes from `encode`. Raises CheckpointError."""
    return decode_document(data, "value", imports=imports, limits=limits, verify=verify)[1]
