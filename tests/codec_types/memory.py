"""The memory a checkpoint takes to refuse a value over Limits.max_bytes, in a
new interpreter (ru_maxrss is the high-water mark of the whole process):

    python -m tests.codec_types.memory KIND [MIB]  -> {"held": KiB, "extra": KiB, "error": ...}

KIND is the local the checkpoint holds, MIB (default 200) megabytes of it:
`bytes`, `str`, or `strings` (a list of 1 MiB strings). `held` is the peak
with the value built, `extra` what encoding it added to that peak, `error`
the exception encoding raised (it must be refused: the limit is 64 MiB).
Only public codec API is used, so that any version of the codec can be
measured (bench: PYTHONPATH=<other checkout>/runtime).
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

from resumable import codec

MIB = 1 << 20

#: A stand-in for a compiled function's Machine class: one await (state 3).
_MACHINE = type(
    "hold",
    (),
    {
        "function_id": "memory:hold",
        "run_fingerprint": "-",
        "lowering_version": 1,
        "sites": {},
        "awaits": {3: (4, ("v",))},
    },
)


def _value(kind: str, mib: int) -> Any:
    if kind == "bytes":
        return b"x" * (mib * MIB)  # written, not calloc'ed: its pages are resident
    if kind == "str":
        return "x" * (mib * MIB)
    if kind == "strings":
        return ["x" * MIB for _ in range(mib)]
    raise SystemExit(f"unknown kind {kind!r}")


def measure(kind: str, mib: int) -> dict[str, Any]:
    value = _value(kind, mib)
    held = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    error = None
    try:
        codec.encode_checkpoint(_MACHINE, 3, 1, {"v": value})
    except Exception as e:
        error = f"{type(e).__name__}: {e}"[:300]
    extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - held
    return {"held": held, "extra": extra, "error": error}


if __name__ == "__main__":
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    print(json.dumps(measure(sys.argv[1], size)))
