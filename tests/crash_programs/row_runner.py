"""Runs functions of row_jobs durably, in its own process.

    python row_runner.py PROGRAM_DIR URL CALLS_JSON

CALLS_JSON is a list of calls, run one after the other on one Runtime:
[{"fn": "pay", "args": [...], "run_id": "r-1" or null, "dispatch": false,
"format_1": false}]. Prints one JSON line per call: {"result": value} or
{"error": type name, "message": text}. A call with "dispatch" enqueues the run
(the id is the result). Exits 0 unless the process is killed.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> int:
    program_dir, url, calls = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    sys.path.insert(0, program_dir)

    import row_jobs

    import resumable

    resumable.configure(store=url)
    runtimes: dict[bool, resumable.Runtime] = {}
    for call in calls:
        format_1 = bool(call.get("format_1"))
        fn = getattr(row_jobs, call["fn"])
        out: dict[str, Any]
        try:
            if format_1 not in runtimes:
                options = {"accept_format_1": True} if format_1 else {}
                runtimes[format_1] = resumable.Runtime(url, **options)
            rt = runtimes[format_1]
            if call.get("dispatch"):
                value: Any = fn.dispatch(*call.get("args", []), run_id=call.get("run_id"))
            else:
                value = rt.run(fn, *call.get("args", []), run_id=call.get("run_id"))
            out = {"result": value}
        except Exception as e:
            out = {"error": type(e).__name__, "message": str(e)}
        print(json.dumps(out), flush=True)
    for rt in runtimes.values():
        rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
