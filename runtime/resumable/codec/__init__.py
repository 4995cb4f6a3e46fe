"""The checkpoint codec: Python values to JSON bytes (orjson) and back, exactly.

    encode(value) -> bytes                      decode(bytes) -> value
    encode_document(meta, key, value) -> (bytes, plain)
    encode_checkpoint(machine, state, seq, locals) -> bytes
    decode_document(bytes, key) -> (document, value)

A value that is already plain JSON (plain.py) is written and read by orjson
as it is; any other goes through encoder.py / decoder.py (tags like
`{"$tuple": [...]}`, identity through `$id`/`$ref`). Which path was taken is
recorded in the document (`"plain": true`).

The format is versioned (FORMAT_VERSION); every earlier version still
decodes. A version-3 document ends with `"seal": "<8 characters>"`, which
makes the CRC-32 of all its bytes SEALED (plain.py): a flipped byte or a
truncation is detected by one crc32 of the stored bytes. (A version-2
document starts with `"crc": "89abcdef"`, the CRC-32 of the document without
that member.) Decoding is bounded by `Limits` (size, nesting, digits; format
1, which has no checksum, only when accepted) and raises CheckpointError for
anything malformed or hostile. Functions, classes and modules stored as
values are limited to safe ones, both ways (allowed.py).

A checkpoint (`encode_checkpoint`) is written into bytes kept per machine and
await: the envelope before and after `seq`, then the orjson bytes of the live
locals when they are plain, then the seal; nothing else is built per await.

Layout: registry.py (class names, aliases, registered codecs), kinds.py
(knowledge shared by both directions), allowed.py (the functions and classes
a checkpoint may hold), plain.py, encoder.py, decoder.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zlib import crc32

import orjson

from ..errors import CheckpointError, SerializationError
from . import managers as _managers  # noqa: F401  (registers the contextlib codecs)
from .decoder import Decoder
from .encoder import Encoder, Unencodable, type_name
from .kinds import traceback_text
from .plain import (
    DOLLAR,
    SEAL_OPEN,
    SEAL_T0,
    SEAL_T1,
    SEAL_T2,
    SEALED,
    dumps_plain,
    nested_within,
    plain_fields,
    seal,
    sealed,
)
from .registry import (
    _internal_by_type,
    codec_for,
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
    "SEALED",
    "SUPPORTED_VERSIONS",
    "Limits",
    "Unencodable",
    "decode",
    "decode_document",
    "decode_tree",
    "decode_value",
    "dumps",
    "encode",
    "encode_checkpoint",
    "encode_checkpoint_fresh",
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
FORMAT_VERSION = 3
SUPPORTED_VERSIONS = (1, 2, 3)


@dataclass(frozen=True)
class Limits:
    """Bounds on what is encoded and decoded.

    max_depth: nesting of every value encoded, and of every value decoded
    from storage (a plain document read with `verify=False`, bytes this
    process has just written, is not walked again); max_bytes: size of an
    encoded document (a value whose strings and bytes alone pass it is
    refused before it is copied); max_int_digits: digits of one integer or
    decimal; accept_format_1: read documents of format 1, which have no
    checksum (refused by default: a changed byte would go unnoticed)."""

    max_depth: int = 200
    max_bytes: int = 64 * 1024 * 1024
    max_int_digits: int = 100_000
    accept_format_1: bool = False
    #: Documents this short cannot nest deeper than max_depth (a level takes
    #: 2 bytes, the envelope more): they are not walked.
    _shallow_bytes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_shallow_bytes", 2 * self.max_depth + 5)


DEFAULT_LIMITS = Limits()

_loads, _dumps = orjson.loads, orjson.dumps  # one lookup less on the hot paths


# -- trees -----------------------------------------------------------------------


def _encoder(limits: Limits, imports: frozenset[str] | None, closures: Any = None) -> Encoder:
    return Encoder(limits.max_depth, limits.max_int_digits, limits.max_bytes, imports, closures)


def encode_value(
    value: Any, limits: Limits = DEFAULT_LIMITS, imports: frozenset[str] | None = None
) -> Any:
    """The tagged JSON tree of `value` (the general path). Raises Unencodable.
    `imports`: modules the reader may import (a module value must be one of
    them or the project's); None: not known, modules are checked by the reader."""
    holder: list[Any] = [None]
    enc = _encoder(limits, imports)
    try:
        holder[0] = enc.enc(value, holder, 0, 1)
    except RecursionError:
        raise Unencodable(value, "it is nested too deeply") from None
    if enc.size > enc.max_bytes:
        raise enc.too_big(value)
    return holder[0]


def encode_named(
    fields: dict[str, Any],
    limits: Limits = DEFAULT_LIMITS,
    imports: frozenset[str] | None = None,
    closures: Any = None,
) -> dict[str, Any]:
    """The tagged tree of named values (a checkpoint's locals), sharing one
    identity memo. On failure the Unencodable's `variable` names the field.
    `closures`: the function's closures over the run's locals
    (resumable.closures), stored by their definition."""
    enc = _encoder(limits, imports, closures)
    out: dict[str, Any] = {}
    for name, value in fields.items():
        out[name] = None
        try:
            out[name] = enc.enc(value, out, name, 2)
            if enc.size > enc.max_bytes:
                raise enc.too_big(value)
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
    if dumps_plain(value, limits.max_depth, limits.max_bytes) is not None:
        return value, True
    return encode_value(value, limits), False


def encode_fields(fields: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> tuple[Any, bool]:
    """`encode_tree` for named values (see `encode_named`)."""
    if dumps_plain(fields, limits.max_depth, limits.max_bytes) is not None:
        return fields, True
    return encode_named(fields, limits), False


def decode_tree(
    tree: Any,
    *,
    plain: bool = False,
    imports: frozenset[str] = frozenset(),
    limits: Limits = DEFAULT_LIMITS,
    version: int = FORMAT_VERSION,
    closures: Any = None,
) -> Any:
    """Decode a tree. `imports`: modules a `$module` reference may import (the
    compiled function's own imports). `closures`: rebuilds the function's
    closures over the locals being decoded (a checkpoint's only)."""
    if plain:
        return tree
    decoder = Decoder(
        imports=imports,
        max_depth=limits.max_depth,
        max_int_digits=limits.max_int_digits,
        version=version,
        closures=closures,
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
        raise CheckpointError(f"checkpoint is corrupt: it is not valid JSON ({e})") from None


def encode_document(
    meta: dict[str, Any],
    key: str,
    value: Any,
    *,
    named: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    imports: frozenset[str] | None = None,
) -> tuple[bytes, bool]:
    """The JSON bytes of `meta` plus `"plain"` and `key`: the encoded `value`
    (`named`: a dict of named values; errors name the variable), sealed with
    its checksum. `meta` is changed: pass a new dict. `imports`: see
    `encode_value`.

    Returns (bytes, plain). Raises Unencodable, or SerializationError when
    the bytes exceed the limit."""
    meta.pop(key, None)  # `key` comes last
    body = dumps_plain(value, limits.max_depth, limits.max_bytes)
    if body is not None:
        if len(body) > limits.max_bytes:
            _check_size(body, limits)  # before it is copied into the document
        meta["plain"] = True
        meta[key] = None
        head = orjson.dumps(meta)  # ...,"<key>":null}
        data = sealed(b"%b%b%b" % (head[:-5], body, SEAL_OPEN))
        if len(data) > limits.max_bytes:
            _check_size(data, limits)
        return data, True
    meta["plain"] = False
    if named:
        meta[key] = encode_named(value, limits, imports)
    else:
        meta[key] = encode_value(value, limits, imports)
    return seal(dumps(meta, limits)), False


# -- checkpoints -------------------------------------------------------------------

#: machine class -> await state -> the bytes of its checkpoint documents
#: before and after `seq` (for a plain payload), the locals live there, the
#: most bytes a document adds to its payload (the envelope, seq, seal), and
#: the bytes after `seq` for a tagged payload.
_ENVELOPES: dict[Any, dict[int, tuple[bytes, bytes, tuple[str, ...], int, bytes]]] = {}


def _checkpoint_meta(machine: Any, state: int, seq: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"v": FORMAT_VERSION, "fn": machine.function_id}
    lowering = getattr(machine, "lowering_version", 1)
    if lowering != 1:  # absent: 1, the layout before the number was stored
        meta["lv"] = lowering
    site = machine.sites.get(state)
    if site is not None:
        meta["at"], meta["fp"] = site
    else:
        meta["fp"] = machine.run_fingerprint
    meta["seq"] = seq
    meta["state"] = state
    return meta


def _envelope(machine: Any, state: int) -> tuple[bytes, bytes, tuple[str, ...], int, bytes]:
    meta = _checkpoint_meta(machine, state, 0)
    meta["plain"] = True
    meta["locals"] = None
    data = orjson.dumps(meta)  # {...,"seq":0,"state":...,"plain":true,"locals":null}
    at = data.index(b',"seq":0,') + len(b',"seq":')  # never inside a string (" is \" there)
    head, rest = data[:at], data[at + 1 : -len(b"null}")]
    extra = len(head) + len(rest) + 20 + len(b',"seal":"01234567"}')  # seq: 20 digits at most
    plain_tail = b'"plain":true,"locals":'
    assert rest.endswith(plain_tail)
    tagged = rest[: -len(plain_tail)] + b'"plain":false,"locals":'  # a tagged payload's
    envelope = head, rest, tuple(machine.awaits[state][1]), extra, tagged
    if len(_ENVELOPES) >= 1024:  # machines compiled again and again (tests)
        _ENVELOPES.clear()
    _ENVELOPES.setdefault(machine, {})[state] = envelope
    return envelope


def encode_checkpoint(
    machine: Any,
    state: int,
    seq: int,
    values: dict[str, Any],
    limits: Limits = DEFAULT_LIMITS,
    closures: Any = None,
) -> bytes:
    """Checkpoint number `seq` of a run of `machine` (a compiled function's
    Machine class) standing at await `state`: the locals live there, taken
    from `values` (one not assigned is left out), in the envelope `v`, `fn`,
    `at` (when the machine has site fingerprints), `fp`, `seq`, `state`,
    `plain`, sealed with its checksum.

    The bytes of `encode_document` of that envelope; a plain payload is
    written between the envelope's bytes, kept per machine and state. Raises
    Unencodable (its `variable` names the local), or SerializationError when
    the bytes exceed the limit. `closures`: see `encode_named`."""
    try:
        head, rest, names, extra, _ = _ENVELOPES[machine][state]
    except KeyError:
        head, rest, names, extra, _ = _envelope(machine, state)
    # dumps_plain of the live locals, its common case inlined: this runs at every await.
    max_bytes = limits.max_bytes
    fields = plain_fields(values, names, limits.max_depth, max_bytes)
    body = None
    if fields is not None:
        try:
            body = _dumps(fields)
        except orjson.JSONEncodeError:
            pass  # a non-str key, an int beyond 64 bits, a lone surrogate
        else:
            if DOLLAR in body and b'"$' in body:
                body = None  # perhaps a key starting with $
    else:  # not plain, too big for a direct walk, too long, or a local not assigned
        fields = {name: values[name] for name in names if name in values}
        body = dumps_plain(fields, limits.max_depth, max_bytes)
    if body is None:
        meta = _checkpoint_meta(machine, state, seq)
        meta["plain"] = False
        meta["locals"] = encode_named(
            fields, limits, getattr(machine, "import_set", frozenset()), closures
        )
        return seal(dumps(meta, limits))
    near = len(body) > max_bytes - extra  # the document may be over the limit
    if near and len(body) > max_bytes:
        _check_size(body, limits)  # before it is copied into the document
    data = b'%b%d%b%b,"seal":"' % (head, seq, rest, body)  # then sealed(data), inlined:
    c = crc32(data)
    data += (SEAL_T0[c & 2047] ^ SEAL_T1[c >> 11 & 2047] ^ SEAL_T2[c >> 22]).to_bytes(10, "big")
    if near and len(data) > max_bytes:
        _check_size(data, limits)
    return data


#: Internal (loop cursor) tags whose state is [range, int]: written and
#: rebuilt without the general walk when they iterate a range.
_RANGE_CURSORS = frozenset({"loop.seq", "loop.reversed"})
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def encode_checkpoint_fresh(
    machine: Any, state: int, seq: int, values: dict[str, Any], limits: Limits = DEFAULT_LIMITS
) -> tuple[bytes, dict[str, Any]] | None:
    """(`encode_checkpoint` bytes, the locals a run goes on with) when
    those locals need no decode; None otherwise: the caller encodes them with
    encode_checkpoint (and its closures) and decodes the bytes.

    The locals need no decode when every live one is immutable: a str, int,
    float (finite), bool or None is the same value decoded, and is handed
    back as it is. A loop cursor over a range (mutable: its position) is
    rebuilt by the decoder's own constructor for its tag from a new range and
    the position, which is what decoding its tree gives; it is written here
    as the general walk writes it (the same bytes). Raises what
    encode_checkpoint raises (a str too long for the limit)."""
    try:
        envelope = _ENVELOPES[machine][state]
    except KeyError:
        envelope = _envelope(machine, state)
    cursors: list[tuple[str, Any, int, Any]] | None = None
    fresh: dict[str, Any] = {}
    wide = False  # an int beyond 64 bits (signed): a tagged value, $int
    for name in envelope[2]:
        try:
            v = values[name]
        except KeyError:
            continue  # not assigned on the path taken: left out, as encode_checkpoint does
        t = type(v)
        if t is str or t is bool or v is None:
            fresh[name] = v
            continue
        if t is int:
            if not _I64_MIN <= v <= _I64_MAX:
                wide = True
            fresh[name] = v
            continue
        if t is float:
            if v - v != 0.0:  # nan or an infinity: a tagged value
                return None
            fresh[name] = v
            continue
        internal = _internal_by_type.get(t)
        if internal is None or internal[0] not in _RANGE_CURSORS or codec_for(t) is not None:
            return None
        r, i = internal[1](v)
        if type(r) is not range or type(i) is not int:
            return None
        if cursors is None:
            cursors = []
        cursors.append((name, r, i, internal[2]))
        fresh[name] = v
    if cursors is None:  # immutable values only
        return encode_checkpoint(machine, state, seq, values, limits), fresh
    data = None if wide else _cursor_checkpoint(envelope, seq, fresh, cursors, limits)
    if data is None:
        return None
    for name, r, i, from_state in cursors:
        fresh[name] = from_state([range(r.start, r.stop, r.step), i])
    return data, fresh


def _cursor_checkpoint(
    envelope: tuple[bytes, bytes, tuple[str, ...], int, bytes],
    seq: int,
    fields: dict[str, Any],
    cursors: list[tuple[str, Any, int, Any]],
    limits: Limits,
) -> bytes | None:
    """The bytes encode_checkpoint writes for `fields`, immutable values
    and the range cursors (name, range, position, decoder) in `cursors`, by the
    general path's rules (`encode_named`, then `seal(dumps(meta))`: a cursor
    is `{"$<tag>": [{"$range": [start, stop, step]}, i]}`); None when the
    general path may write them otherwise or refuse them (a cursor held
    twice, an int beyond 64 bits, a lone surrogate, too deep, too big): the
    caller goes that way."""
    if limits.max_depth < 4:
        return None  # a cursor at depth 2, its range at 4
    if len(cursors) > 1 and len({id(fields[c[0]]) for c in cursors}) < len(cursors):
        return None  # one cursor twice: a $ref
    tree = dict(fields)
    for name, r, i, _ in cursors:
        if not (
            _I64_MIN <= r.start <= _I64_MAX
            and _I64_MIN <= r.stop <= _I64_MAX
            and _I64_MIN <= r.step <= _I64_MAX
            and _I64_MIN <= i <= _I64_MAX
        ):
            return None  # an $int
        tag = _internal_by_type[type(fields[name])][0]
        tree[name] = {"$" + tag: [{"$range": [r.start, r.stop, r.step]}, i]}
    try:
        body = _dumps(tree)
    except orjson.JSONEncodeError:
        return None  # a lone surrogate: the general path writes a $str
    # orjson.dumps(meta) is the envelope's bytes around the locals' (compact JSON).
    data = b'%b%d%b%b,"seal":"' % (envelope[0], seq, envelope[4], body)
    if len(data) + 1 - len(SEAL_OPEN) > limits.max_bytes:
        return None  # the general path names the value too big
    c = crc32(data)
    return data + (SEAL_T0[c & 2047] ^ SEAL_T1[c >> 11 & 2047] ^ SEAL_T2[c >> 22]).to_bytes(
        10, "big"
    )


# -- reading documents ---------------------------------------------------------------


_CORRUPT = "checkpoint is corrupt: its checksum does not match its contents"
_FORMAT_1 = (
    "checkpoint is in format 1, which has no checksum, so a changed byte would go unnoticed; "
    "refused unless format 1 is accepted: resumable.Runtime(..., accept_format_1=True), "
    "or resumable.codec.Limits(accept_format_1=True)"
)
#: zlib.crc32(b"{"): a format-2 checksum starts with the document's opening brace.
_OPEN_CRC = crc32(b"{")


def _v2_sealed(data: bytes, size: int, document: dict[str, Any]) -> bool:
    """Whether a format-2 document's "crc", its first member (18 bytes:
    `{"crc":"89abcdef",`), is the CRC-32 of the document without it."""
    try:
        crc = int(document["crc"], 16)  # a str of 8 hex digits, or the rest cannot match
    except (KeyError, TypeError, ValueError):
        return False
    return crc32(data[18:] if size < 65536 else memoryview(data)[18:], _OPEN_CRC) == crc


def read_document(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, verify: bool = True
) -> dict[str, Any]:
    """A document's JSON, checksum verified (unless `verify` is False), its
    payload left as stored: nothing is decoded, no class is looked up."""
    return decode_document(data, None, limits=limits, verify=verify)[0]


def decode_document(
    data: bytes,
    key: str | None,
    *,
    imports: frozenset[str] = frozenset(),
    limits: Limits = DEFAULT_LIMITS,
    verify: bool = True,
    closures: Any = None,
) -> tuple[dict[str, Any], Any]:
    """(document, decoded value at `key`) of bytes from `encode_document`, in
    any supported format version (`key` None: the value is not looked at).
    `verify=False` skips the checksum, for bytes this process has just
    written. `closures`: see `decode_tree`. Raises CheckpointError."""
    size = len(data)
    if size > limits.max_bytes:
        raise CheckpointError(
            f"checkpoint is {size} bytes, more than the limit of {limits.max_bytes}"
        )
    try:
        document = _loads(data)
    except orjson.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint is corrupt: it is not valid JSON ({e})") from None
    version = document.get("v") if type(document) is dict else None
    if version == FORMAT_VERSION and type(version) is int:
        if verify and crc32(data) != SEALED:  # the seal
            raise CheckpointError(_CORRUPT)
    elif type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise CheckpointError(f"not a document of a known format version (v={version!r:.20})")
    elif verify and (
        not _v2_sealed(data, size, document)
        if version == 2
        else "seal" in document or "crc" in document  # a later version's "v" changed to 1
    ):
        raise CheckpointError(_CORRUPT)
    elif version == 1 and not limits.accept_format_1:
        raise CheckpointError(_FORMAT_1)
    plain = document.get("plain", False)
    if plain is True:
        try:
            value = document[key]  # plain JSON: nothing to decode
        except KeyError:
            pass
        else:
            # Stored bytes: nested no deeper than the limit.
            if (
                verify
                and size > limits._shallow_bytes
                and not nested_within(value, limits.max_depth)
            ):
                raise CheckpointError(
                    f"checkpoint is nested more than {limits.max_depth} levels deep"
                )
            return document, value
    if key is None:
        return document, None
    if key not in document:
        raise CheckpointError(f"malformed document: it has no {key!r}")
    if plain is not False:
        raise CheckpointError("malformed document: 'plain' is not a boolean")
    value = decode_tree(
        document[key],
        plain=False,
        imports=imports,
        limits=limits,
        version=version,
        closures=closures,
    )
    return document, value


def encode(
    value: Any, limits: Limits = DEFAULT_LIMITS, *, imports: frozenset[str] | None = None
) -> bytes:
    """A value as JSON bytes: `{"v": 3, "plain": bool, "value": tree, "seal": ...}`.

    Raises SerializationError naming the path inside the value."""
    try:
        doc = encode_document({"v": FORMAT_VERSION}, "value", value, limits=limits, imports=imports)
        return doc[0]
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
