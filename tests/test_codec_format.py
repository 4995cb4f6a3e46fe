"""The checkpoint format cannot drift silently.

- Golden samples: the fixed table of tests/codec_types/samples.py (every tag
  of the format) encoded to tests/codec_samples/v3/<name>.json, compared byte
  for byte, and decoded back to values equal to fresh ones. The files are
  written when missing or with `pytest --update-golden`; review the diff.
- The seal: the CRC-32 of every document is SEALED, and checked on decoding.
- Format 2: the same table as written by format 2 (tests/codec_samples/v2/,
  the checksum first, in hex) still decodes, checksum verified.
- Format 1: a checkpoint written by the first codec (list-form `$exc`,
  no `plain` flag, no checksum) is refused unless format 1 is accepted
  (`Limits(accept_format_1=True)`); accepted, it still decodes, through
  `decode_tree(..., version=1)`, through `resumable.runtime.decode_checkpoint`
  with a compiled machine, and by resuming a run from it.
- A fresh process: values encoded here decode in a new interpreter (classes
  importable from tests/codec_types) and the reverse, byte-identical.
"""

from __future__ import annotations

import base64
import math
import re
import sys
import types
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import resumable
from resumable import CheckpointError
from resumable.codec import (
    FORMAT_VERSION,
    SEALED,
    Limits,
    decode,
    decode_document,
    decode_tree,
    encode,
    seal,
)
from resumable.machine import Machine
from resumable.runtime import RunRecord, decode_checkpoint
from tests.codec_types import models as m
from tests.codec_types.compare import assert_same
from tests.codec_types.samples import (
    SAMPLES,
    TAGS,
    expected_v1_locals,
    run_fresh_process,
    samples,
)
from tests.compiled import compile_and_import

SAMPLES_DIR = Path(__file__).resolve().parent / "codec_samples"
V3 = SAMPLES_DIR / "v3"  # the current format
V2 = SAMPLES_DIR / "v2"
V1_CHECKPOINT = SAMPLES_DIR / "v1" / "checkpoint.json"


# ----------------------------------------------------------------- golden samples


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.mark.parametrize("name", SAMPLES)
def test_golden_sample(name: str, update_golden: bool) -> None:
    path = V3 / f"{name}.json"
    data = encode(SAMPLES[name]())
    if update_golden or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    golden = path.read_bytes()
    assert data == golden, (
        f"the encoding of sample {name!r} changed; if that is intended, bump FORMAT_VERSION "
        "(keeping the old version decodable) or run pytest --update-golden and review the diff"
    )
    assert_same(SAMPLES[name](), decode(golden))


def test_golden_samples_cover_every_tag_and_nothing_else() -> None:
    files = {p.stem for p in V3.glob("*.json")}
    assert files == set(SAMPLES), "a golden file without a sample, or a sample without a file"
    tags: set[str] = set()
    for path in V3.glob("*.json"):
        document = orjson.loads(path.read_bytes())
        assert document["v"] == FORMAT_VERSION and type(document["plain"]) is bool
        tags |= set(_keys(document["value"]))
    tags = {t for t in tags if t.startswith("$")}
    assert tags >= TAGS, sorted(TAGS - tags)
    assert orjson.loads((V3 / "json.json").read_bytes())["plain"] is True
    assert orjson.loads((V3 / "tuple.json").read_bytes())["plain"] is False


def _keys(tree: Any) -> Iterator[str]:
    stack = [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            yield from (k for k in x if len(x) <= 2)  # a tag or $id/$v, not a user dict
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)


def test_golden_files_are_read_not_just_rewritten() -> None:
    """Editing a golden file changes what decodes (the test reads the file)."""
    golden = (V3 / "tuple.json").read_bytes()
    unsealed = golden[: golden.rindex(b',"seal":"')] + b"}"  # the seal comes last
    edited = seal(unsealed.replace(b'"$tuple"', b'"$set"', 1))
    assert edited != golden
    assert decode(edited) != decode(golden)
    with pytest.raises(CheckpointError, match="checksum"):  # edited without sealing again
        decode(golden.replace(b'"$tuple"', b'"$set"', 1))


# ----------------------------------------------------------------- the seal


def test_every_document_is_sealed() -> None:
    """Its last member is the seal: 8 characters of 01234567pqrstuvw that make
    the CRC-32 of all its bytes SEALED."""
    for name in SAMPLES:
        data = (V3 / f"{name}.json").read_bytes()
        assert zlib.crc32(data) == SEALED, name
        assert re.fullmatch(rb'\{.*,"seal":"[0-7p-w]{8}"\}', data, re.DOTALL), name
        assert list(orjson.loads(data))[-1] == "seal"
    for value in (None, "", {}, [], {"a": [1]}, ("x",), 2**100):
        data = encode(value)
        assert zlib.crc32(data) == SEALED
        assert decode(data) == value


def test_seal_seals_any_object() -> None:
    for raw in (b"{}", b'{"a":1}', b'{"v":3,"plain":true,"value":[]}', b'{"s":"\\u00e9 \\""}'):
        data = seal(raw)
        assert zlib.crc32(data) == SEALED
        document = orjson.loads(data)
        assert set(document.pop("seal")) <= set("01234567pqrstuvw")
        assert document == orjson.loads(raw)


def test_a_changed_version_does_not_skip_the_checksum() -> None:
    """A flip of "v":3 to 1 (format 1 had no checksum) or 2 is refused."""
    data = encode((1, "x"))
    assert data.startswith(b'{"v":3,')
    for version in (b"1", b"2"):
        with pytest.raises(CheckpointError, match="checksum"):
            decode(data.replace(b'"v":3', b'"v":' + version, 1))
    v2 = (V2 / "tuple.json").read_bytes()
    with pytest.raises(CheckpointError, match="checksum"):
        decode(v2.replace(b'"v":2', b'"v":1', 1))


def test_format_version_is_recorded() -> None:
    assert FORMAT_VERSION == 3
    for value in (1, (1,), {"a": [1]}):
        assert orjson.loads(encode(value))["v"] == FORMAT_VERSION


@pytest.mark.parametrize("version", [0, 4, 99, -1, "3", None, [3], 3.0, True])
def test_unknown_format_versions_are_refused(version: Any) -> None:
    data = seal(orjson.dumps({"v": version, "plain": True, "value": 1}))
    with pytest.raises(CheckpointError, match="format version"):
        decode(data)


# ----------------------------------------------------------------- format 2


#: Samples changed since format 2 wrote them: (what the v2 file holds, the
#: modules the function imports). Its `module` was math, which decodes only for
#: a function that imports it; its `function` held `len`, one of the built-in
#: functions a checkpoint may hold (allowed.BUILTIN_FUNCTIONS).
_V2_CHANGED: dict[str, tuple[Any, frozenset[str]]] = {
    "module": (math, frozenset({"math"})),
    "function": ([m.helper, len], frozenset()),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_v2_golden_sample_decodes(name: str) -> None:
    """Written by format 2 (the CRC-32 first, in hex): still decodes, checked."""
    data = (V2 / f"{name}.json").read_bytes()
    assert data.startswith(b'{"crc":"') and orjson.loads(data)["v"] == 2
    expected, imports = _V2_CHANGED.get(name, (SAMPLES[name](), frozenset()))
    assert_same(expected, decode(data, imports=imports))
    middle = len(data) // 2
    flipped = data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
    with pytest.raises(CheckpointError):
        decode(flipped)


def test_v2_samples_cover_every_tag() -> None:
    assert {p.stem for p in V2.glob("*.json")} == set(SAMPLES)


# ----------------------------------------------------------------- format 1


def _v1_document() -> dict[str, Any]:
    document = orjson.loads(V1_CHECKPOINT.read_bytes())
    assert document["v"] == 1 and "plain" not in document
    return document


def test_v1_sample_is_format_1() -> None:
    document = _v1_document()
    err = document["locals"]["err"]["$exc"]
    assert type(err) is list and len(err) == 7  # the list form of format 1
    assert err[0] == "tests.codec_types.models:AppError" and err[5] is True


#: The v1 sample holds `mod` = math: it decodes for a function that imports math.
_V1_IMPORTS = frozenset({"math"})


def test_v1_tree_decodes() -> None:
    out = decode_tree(_v1_document()["locals"], version=1, imports=_V1_IMPORTS)
    assert_same(expected_v1_locals(), out)
    assert out["err"].__context__.args == ("first",) and out["err"].__suppress_context__
    assert out["os_error"].filename == "x.txt" and out["loop"][0] is out["loop"]


def test_v1_list_form_exc_is_refused_as_version_2() -> None:
    with pytest.raises(CheckpointError):
        decode_tree(_v1_document()["locals"]["err"], version=2)


MACHINE_SOURCE = """
from __future__ import annotations

from typing import Any

import resumable


async def tick(value: Any = None) -> Any:
    return value


@resumable.function
async def hold(n: Any, big: Any, d: Any, err: Any, os_error: Any, loop: Any) -> Any:
    await tick()
    return [n, big, d, err, os_error, loop]
"""


@pytest.fixture(scope="module")
def v1_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    path = tmp_path_factory.mktemp("codec_v1_machine") / "codec_v1_machine.py"
    yield compile_and_import(path, "codec_v1_machine", MACHINE_SOURCE)
    sys.modules.pop("codec_v1_machine", None)


def test_v1_document_is_refused_unless_format_1_is_accepted() -> None:
    data = V1_CHECKPOINT.read_bytes()
    with pytest.raises(CheckpointError, match=r"format 1.*Limits\(accept_format_1=True\)"):
        decode_document(data, "locals", imports=_V1_IMPORTS)
    with pytest.raises(CheckpointError, match="format 1"):
        decode_document(data, "locals", imports=_V1_IMPORTS, verify=False)
    accepted = Limits(accept_format_1=True)
    out = decode_document(data, "locals", imports=_V1_IMPORTS, limits=accepted)[1]
    assert_same(expected_v1_locals(), out)


@pytest.fixture
def format_1_accepted(
    v1_machine: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> type[Machine]:
    """The v1 sample's machine, with math among the modules its function
    imports (the sample holds it)."""
    machine: type[Machine] = v1_machine.hold.machine()
    monkeypatch.setattr(machine, "import_set", machine.import_set | _V1_IMPORTS)
    return machine


def test_v1_checkpoint_is_refused_by_the_runtime_by_default(v1_machine: types.ModuleType) -> None:
    machine = v1_machine.hold.machine()
    with pytest.raises(CheckpointError, match="accept_format_1"):
        decode_checkpoint(V1_CHECKPOINT.read_bytes(), machine)


def test_v1_checkpoint_decodes_through_the_runtime(format_1_accepted: type[Machine]) -> None:
    machine = format_1_accepted
    assert 0 in machine.awaits  # the state the sample names
    decoded = decode_checkpoint(
        V1_CHECKPOINT.read_bytes(), machine, limits=Limits(accept_format_1=True)
    )
    assert decoded["state"] == 0 and decoded["seq"] == 1
    assert_same(expected_v1_locals(), decoded["locals"])


def test_a_run_resumes_from_a_v1_checkpoint(
    v1_machine: types.ModuleType, format_1_accepted: type[Machine]
) -> None:
    machine = format_1_accepted
    refusing = resumable.Runtime("memory://")
    record = RunRecord("old-run", machine.function_id, machine.run_fingerprint, b"")
    record.checkpoint = V1_CHECKPOINT.read_bytes()
    record.seq = 1
    record.status = "running"
    assert refusing.store.create(record)
    with pytest.raises(CheckpointError, match=r"Runtime\(\.\.\., accept_format_1=True\)"):
        refusing.run(v1_machine.hold, run_id="old-run")
    assert refusing.status("old-run") == "blocked"
    runtime = resumable.Runtime("memory://", accept_format_1=True)
    record = RunRecord("old-run", machine.function_id, machine.run_fingerprint, b"")
    record.checkpoint = V1_CHECKPOINT.read_bytes()
    record.seq = 1
    record.status = "running"
    assert runtime.store.create(record)
    result = runtime.run(v1_machine.hold, run_id="old-run")
    expected = expected_v1_locals()
    names = ["n", "big", "d", "err", "os_error", "loop"]
    assert_same([expected[k] for k in names], result)
    assert runtime.status("old-run") == "completed"


# ----------------------------------------------------------------- a fresh process


def test_encoded_here_decodes_in_a_fresh_process() -> None:
    payload = {name: base64.b64encode(encode(v)).decode() for name, v in samples().items()}
    results = run_fresh_process("decode", payload)
    assert set(results) == set(SAMPLES)
    failures = {name: r for name, r in results.items() if r != "ok"}
    assert not failures, failures


def test_encoded_in_a_fresh_process_decodes_here() -> None:
    blobs = run_fresh_process("encode", None)
    assert set(blobs) == set(SAMPLES)
    for name, blob in blobs.items():
        data = base64.b64decode(blob)
        assert_same(SAMPLES[name](), decode(data))
        assert data == encode(SAMPLES[name]()), f"{name}: bytes differ between processes"


def test_fresh_process_helper_really_checks() -> None:
    """A wrong value is reported by the other process (the helper is not vacuous)."""
    wrong = {"tuple": base64.b64encode(encode([1, "a", [2], []])).decode()}
    result = run_fresh_process("decode", wrong)["tuple"]
    assert result.startswith("AssertionError") and re.search(r"type list instead of tuple", result)
