"""The user's own programs for tests/test_faults.py, in their own process.

python fault_program.py run MODULE URL FUNCTION RUN_ID ARGS_JSON
    rt.run(FUNCTION, *ARGS, run_id=RUN_ID) and print {"result": ...}; a
    BaseException the run raises is not caught here: it reaches the top
    of the program as it would in any script.

python fault_program.py worker MODULE URL --headroom PAGES [--concurrency N]
    `resumable.worker.work(..., drain=True)` on a store whose connection
    may grow the database by PAGES pages at most (PRAGMA max_page_count,
    set on the store's own thread): the store is "full". SIGUSR1 lifts
    the limit ("space comes back"); SIGTERM/SIGINT stop the worker. Prints
    the worker's lines, `ready` once the limit is set, and `lifted` when
    SIGUSR1 lifted it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("module")
    run.add_argument("url")
    run.add_argument("function")
    run.add_argument("run_id")
    run.add_argument("args")
    worker = sub.add_parser("worker")
    worker.add_argument("module")
    worker.add_argument("url")
    worker.add_argument("--headroom", type=int, required=True)
    worker.add_argument("--concurrency", type=int, default=1)
    options = parser.parse_args()

    import resumable
    from resumable.worker import import_modules

    import_modules([options.module])
    module = module_at(options.module)
    rt = resumable.Runtime(options.url)
    if options.command == "run":
        fn = getattr(module, options.function)
        result = rt.run(fn, *json.loads(options.args), run_id=options.run_id)
        print(json.dumps({"result": result}), flush=True)
        rt.close()
        return 0
    return full_worker(rt, options.headroom, options.concurrency)


def module_at(path: str) -> object:
    """The imported module whose file is `path`."""
    import os

    wanted = os.path.realpath(path)
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and os.path.realpath(file) == wanted:
            return module
    raise LookupError(f"no module imported from {path}")


def full_worker(rt: object, headroom: int, concurrency: int) -> int:
    from resumable.worker import work

    store = rt.store  # type: ignore[attr-defined]

    def on_store_thread(sql: str) -> object:
        return store._executor.submit(lambda: store.conn.execute(sql).fetchone()).result()

    pages = on_store_thread("PRAGMA page_count")[0]  # type: ignore[index]
    on_store_thread(f"PRAGMA max_page_count={pages + headroom}")
    print(f"ready: {pages} pages, at most {pages + headroom}", flush=True)

    async def main() -> object:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def lift() -> None:
            # Queued on the store's thread, between two of its writes.
            store._executor.submit(lambda: store.conn.execute("PRAGMA max_page_count=1000000000"))
            print("lifted", flush=True)

        loop.add_signal_handler(signal.SIGUSR1, lift)
        return await work(
            rt,  # type: ignore[arg-type]
            concurrency=concurrency,
            drain=True,
            poll=0.05,
            stop=stop,
            log=lambda line: print(line, flush=True),
        )

    try:
        report = asyncio.run(main())
    finally:
        rt.close()  # type: ignore[attr-defined]
    print(f"report: {report}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
