"""Runs one function of crashprog durably on a SQLite store, in its own process.

    python runner.py PROGRAM_DIR DB FUNCTION ARGS_JSON RUN_ID [--kill before|after K]
                     [--retry] [--probe-lock]

Prints `ready` once the runtime is open, then one JSON line: {"result": repr,
"checkpoints": [[run id, seq], ...], "elapsed": s, "pid": n} or, when the run
ends with a resumable error, {"error": type name, "message": text} (exit 3).

`--kill before K` / `--kill after K`: SIGKILL this process right before / right
after the K-th checkpoint (counted over all runs this process drives, in
order) is committed. A checkpoint is committed by one `store.commit` of a
checkpoint write (one SQLite transaction), so the kill lands just before
that transaction starts or just after it has committed.

`--retry`: `rt.retry(RUN_ID)` instead of `rt.run`. `--probe-lock`: before
running, take and release the run's ownership lock without waiting, and
report whether that worked (a dead owner must not hold it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("program_dir")
    parser.add_argument("db")
    parser.add_argument("function")
    parser.add_argument("args")
    parser.add_argument("run_id")
    parser.add_argument("--kill", nargs=2, metavar=("WHEN", "K"))
    parser.add_argument("--retry", action="store_true")
    parser.add_argument("--probe-lock", action="store_true")
    options = parser.parse_args()
    sys.path.insert(0, options.program_dir)

    import crashprog

    import resumable

    kill_when, kill_at = (options.kill[0], int(options.kill[1])) if options.kill else ("", 0)
    rt = resumable.Runtime(f"sqlite:///{os.path.abspath(options.db)}")
    store = rt.store
    commit = store.commit
    checkpoints: list[list[Any]] = []

    async def commit_and_kill(write: Any) -> bool:
        if write.kind != "checkpoint":
            return await commit(write)
        checkpoints.append([write.run_id, dict(write.sets)["seq"]])
        if kill_when == "before" and len(checkpoints) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        done = await commit(write)
        if kill_when == "after" and len(checkpoints) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return done

    store.commit = commit_and_kill  # type: ignore[method-assign]
    out: dict[str, Any] = {"pid": os.getpid()}
    if options.probe_lock:
        out["locked"] = store.lock(options.run_id)
        if out["locked"]:
            store.unlock(options.run_id)
    print("ready", flush=True)
    fn = getattr(crashprog, options.function)
    started = time.monotonic()
    try:
        if options.retry:
            result = rt.retry(options.run_id)
        else:
            result = rt.run(fn, *json.loads(options.args), run_id=options.run_id)
    except resumable.ResumableError as e:
        out.update(error=type(e).__name__, message=str(e))
        print(json.dumps(out), flush=True)
        return 3
    finally:
        elapsed = time.monotonic() - started
    out.update(result=repr(result), checkpoints=checkpoints, elapsed=elapsed)
    print(json.dumps(out), flush=True)
    rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
