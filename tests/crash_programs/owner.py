"""Drives one run of owned_jobs.walk with `rt.run`, in its own process.

    python owner.py PROGRAM_DIR STORE_URL RUN_ID NAME N
                    [--kill-after K] [--probe-lock] [--bypass-ownership]

Prints `ready` once the runtime is open, then one JSON line: {"pid": n,
"result": [...], "locked": bool, "seconds": s} or, when the run ends with an
exception, {"pid": n, "error": type name, "message": text} (exit 3). Log
records of warnings and above go to stderr as `LEVEL logger: message`.

`--kill-after K`: SIGKILL this process right after its K-th checkpoint is
committed (from the runtime's on_checkpoint observer).

`--probe-lock`: before running, take and release the run's ownership
without waiting, and report whether that worked (`locked`).

`--bypass-ownership`: break the ownership guarantee on purpose (a test
harness only): this process's store says yes to every `lock`, so it claims
and drives a run that another live process owns. Only the fencing of the
store's writes then keeps the two drivers apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("program_dir")
    parser.add_argument("url")
    parser.add_argument("run_id")
    parser.add_argument("name")
    parser.add_argument("n", type=int)
    parser.add_argument("--kill-after", type=int, default=0)
    parser.add_argument("--probe-lock", action="store_true")
    parser.add_argument("--bypass-ownership", action="store_true")
    options = parser.parse_args()
    sys.path.insert(0, options.program_dir)
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )

    import owned_jobs

    import resumable

    committed = 0

    def observe(info: Any) -> None:
        nonlocal committed
        committed += 1
        if committed == options.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    rt = resumable.Runtime(options.url, on_checkpoint=observe)
    store = rt.store
    if options.bypass_ownership:
        store.lock = lambda run_id: True  # type: ignore[method-assign]
        store.unlock = lambda run_id: None  # type: ignore[method-assign]
    out: dict[str, Any] = {"pid": os.getpid()}
    if options.probe_lock:
        out["locked"] = store.lock(options.run_id)
        if out["locked"]:
            store.unlock(options.run_id)
    print("ready", flush=True)
    started = time.monotonic()
    try:
        result = rt.run(owned_jobs.walk, options.name, options.n, run_id=options.run_id)
    except Exception as e:
        out.update(error=type(e).__name__, message=str(e))
        print(json.dumps(out), flush=True)
        return 3
    out.update(result=result, seconds=time.monotonic() - started)
    print(json.dumps(out), flush=True)
    rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
