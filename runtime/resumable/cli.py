"""The `resumable` command.

    resumable compile PATH... [--check|--watch] (needs: pip install 'resumable[compiler]')
    resumable worker [--store URL] [--module M]... [--concurrency N] [--drain]
    resumable runs list [--store URL] [--status S] [--all] [--json]
    resumable runs show RUN [--store URL] [--json] [--children N|all]
    resumable runs retry RUN [--store URL]
    resumable runs send-event RUN NAME [JSON] [--dedup-key KEY] [--store URL]
    resumable runs cancel RUN [--store URL]
    resumable runs purge --older-than AGE [--dry-run] [--store URL]
    resumable schedules list [--store URL] [--json]
    resumable schedules delete SCHEDULE_ID [--store URL]

The store defaults to $RESUMABLE_STORE, then [tool.resumable] in
./pyproject.toml, then sqlite:///.resumable/state.db (config.py).
The compiler is imported only for `compile`, so deployed images without it
can run the other commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .store.base import STATUSES

__all__ = ["main"]


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        help="store URL (default: $RESUMABLE_STORE, else `store` in [tool.resumable] of "
        "./pyproject.toml, else sqlite:///.resumable/state.db)",
    )


def runs_report_children() -> int:
    from .runs_report import CHILDREN_SHOWN

    return CHILDREN_SHOWN


def _children_count(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"--children takes a number or `all`, not {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resumable", description="Resumable async functions.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    comp = sub.add_parser(
        "compile",
        help="compile @resumable.function definitions into __resumable__/ modules",
        description="Compile every @resumable.function in the given files and folders into "
        "__resumable__/<module>.py beside each module.",
    )
    comp.add_argument("paths", nargs="+", metavar="PATH", help="source files or folders")
    comp.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if any generated module is missing or out of date",
    )
    comp.add_argument(
        "--watch",
        action="store_true",
        help="after compiling, compile again each file that changes (until Ctrl-C)",
    )

    worker = sub.add_parser(
        "worker",
        help="drive dispatched runs",
        description="Drive the runs of a store: pending ones, and running ones whose process "
        "died. Stops on SIGTERM/SIGINT, leaving runs resumable.",
    )
    _store_option(worker)
    worker.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="M",
        help="a module (dotted name or .py path) defining the functions to run; repeatable "
        "(default: $RESUMABLE_MODULES, comma-separated, else `modules` in [tool.resumable] "
        "of ./pyproject.toml, else each run's module is imported from the source file it "
        "was started from)",
    )
    worker.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="runs driven at once (default 16)"
    )
    worker.add_argument(
        "--drain",
        action="store_true",
        help="exit once no run is left to drive, now or later: runs that sleep (resumable.sleep, "
        "a retry's delay) are waited for; runs waiting only for an event are not",
    )
    worker.add_argument(
        "--poll",
        type=_positive,
        default=None,
        help="seconds between looks at the store (> 0; default 0.2, or 2 as a fallback on "
        "PostgreSQL, whose LISTEN/NOTIFY wakes the worker)",
    )

    runs = sub.add_parser("runs", help="look at runs and retry them")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")
    listing = runs_sub.add_parser("list", help="runs, newest first")
    _store_option(listing)
    listing.add_argument(
        "--status", action="append", choices=STATUSES, help="only runs with this status"
    )
    listing.add_argument("--all", action="store_true", help="child runs too")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="JSON output")
    show = runs_sub.add_parser("show", help="one run: where it stands, its locals, children")
    _store_option(show)
    show.add_argument("run_id", metavar="RUN")
    show.add_argument("--json", action="store_true", help="JSON output")
    show.add_argument(
        "--children",
        type=_children_count,
        default=runs_report_children(),
        metavar="N|all",
        help="how many child runs to list (default %(default)s; `all`: every one)",
    )
    retry = runs_sub.add_parser(
        "retry", help="make a failed or blocked run runnable again (a worker resumes it)"
    )
    _store_option(retry)
    retry.add_argument("run_id", metavar="RUN")
    send = runs_sub.add_parser(
        "send-event", help="send an event to a run (its next wait_event(NAME) receives it)"
    )
    _store_option(send)
    send.add_argument("run_id", metavar="RUN")
    send.add_argument("name", metavar="NAME")
    send.add_argument("payload", metavar="JSON", nargs="?", help="the payload (JSON; default null)")
    send.add_argument("--dedup-key", help="a resend with the same key is ignored")
    purge = runs_sub.add_parser(
        "purge",
        help="delete runs that ended (completed, failed, cancelled) before a given age, "
        "with their children and events",
    )
    _store_option(purge)
    purge.add_argument(
        "--older-than",
        required=True,
        type=_age,
        metavar="AGE",
        help="how long ago they were last written: 30d, 12h, 90m or 3600s",
    )
    purge.add_argument("--dry-run", action="store_true", help="only count them")
    cancel = runs_sub.add_parser(
        "cancel",
        help="cancel a run and the runs below it (CancelledError at its await; "
        "its finally blocks run)",
    )
    _store_option(cancel)
    cancel.add_argument("run_id", metavar="RUN")
    _schedules_parser(sub)
    db = sub.add_parser("db", help="the store's schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    migrate = db_sub.add_parser(
        "migrate", help="create the store's schema, or bring it to this version's"
    )
    _store_option(migrate)
    return parser


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _age(text: str) -> float:
    """`30d`, `12h`, `90m`, `3600s`: seconds (argparse type)."""
    number, unit = text[:-1], text[-1:].lower()
    try:
        if unit not in _UNITS:
            raise ValueError
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age: give a number and a unit, as in 30d, 12h, 90m or 3600s"
        ) from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: an age is 0 or more")
    if not seconds < 1e12:
        raise argparse.ArgumentTypeError(f"{text!r}: that age is too large (at most 1e12 s)")
    return seconds


def _positive(text: str) -> float:
    """A number of seconds above 0 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "compile":
        try:
            from resumable_compiler.cli import main as compile_main
        except ImportError as e:
            print(
                f"resumable compile needs the compiler, which is not installed ({e}).\n"
                "Install it with: pip install 'resumable[compiler]'",
                file=sys.stderr,
            )
            return 2
        if args.watch:
            if args.check:
                print("resumable compile: --watch and --check do not go together", file=sys.stderr)
                return 2
            from resumable_compiler.cli import watch

            return watch(args.paths)
        return compile_main(args.paths, check=args.check)
    from .config import configured_store
    from .errors import ResumableError
    from .store import describe

    try:
        args.store, origin = configured_store(args.store)
        if args.command == "worker":
            return _worker(args, origin)
        print(f"resumable: store {describe(args.store)} (from {origin})", file=sys.stderr)
        if args.command == "schedules":
            return _schedules(args)
        if args.command == "db":
            return _db_migrate(args)
        if args.runs_command == "send-event":
            return _send_event(args)
        if args.runs_command == "cancel":
            return _cancel(args)
        if args.runs_command == "purge":
            return _purge(args)
        return _runs(args)
    except ResumableError as e:
        print(f"resumable: {e}", file=sys.stderr)
        return 1


def _worker(args: argparse.Namespace, origin: str) -> int:
    from .config import configured_modules
    from .worker import ModuleImportError, run_worker

    modules = list(args.module) or configured_modules()
    if args.concurrency < 1:
        print("resumable worker: --concurrency must be at least 1", file=sys.stderr)
        return 2
    try:
        return run_worker(
            args.store,
            modules,
            concurrency=args.concurrency,
            drain=args.drain,
            poll=args.poll,
            origin=origin,
        )
    except ModuleImportError as e:
        print(f"resumable worker: {e}", file=sys.stderr)
        return 2


def _runs(args: argparse.Namespace) -> int:
    from . import runs_report
    from .store import describe, open_store

    # Read-only first, for retry too: a path with no store is an error, never
    # a new empty store, and looking never migrates, locks or waits.
    store = open_store(args.store, readonly=True)
    try:
        if args.runs_command == "list":
            records = store.list_runs(statuses=args.status, top_only=not args.all, limit=args.limit)
            if args.json:
                sys.stdout.buffer.write(runs_report.list_json(records) + b"\n")
            else:
                print(runs_report.list_text(records))
            return 0
        record = store.get(args.run_id)
        if record is None:
            print(f"resumable: no run {args.run_id!r} in {describe(args.store)}", file=sys.stderr)
            return 1
        if args.runs_command == "show":
            if args.json:
                sys.stdout.buffer.write(runs_report.show_json(record, store) + b"\n")
            else:
                print(runs_report.show_text(record, store, children=args.children))
            return 0
    finally:
        store.close()
    return _retry(args)


def _retry(args: argparse.Namespace) -> int:
    from .runtime import requeue
    from .store import open_store

    store = open_store(args.store)
    try:
        requeue(store, args.run_id)
    except (KeyError, ValueError) as e:
        print(f"resumable: {e.args[0]}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"run {args.run_id} is pending again: a worker resumes it from its last checkpoint")
    return 0


def _send_event(args: argparse.Namespace) -> int:
    import json

    from .errors import SerializationError
    from .runtime import Runtime

    try:
        payload = None if args.payload is None else json.loads(args.payload)
    except ValueError as e:
        print(f"resumable: the payload is not JSON ({e}): {args.payload!r:.200}", file=sys.stderr)
        return 2
    with Runtime(args.store) as rt:
        try:
            new = rt.send_event(args.run_id, args.name, payload, dedup_key=args.dedup_key)
        except (LookupError, ValueError, TypeError, SerializationError) as e:
            print(f"resumable: {e}", file=sys.stderr)
            return 1
    from .ids import shown

    if new:
        print(shown(f"event {args.name!r} sent to run {args.run_id}"))
    else:
        what = f"event {args.name!r} with key {args.dedup_key!r}"
        print(shown(f"{what} was sent to run {args.run_id} already"))
    return 0


def _purge(args: argparse.Namespace) -> int:
    import time

    from .store import open_store

    before = time.time() - args.older_than
    store = open_store(args.store, readonly=args.dry_run)
    try:
        if args.dry_run:
            ended = [
                r
                for r in store.list_runs(statuses=("completed", "failed", "cancelled"))
                if r.parent is None and r.updated_at < before
            ]
            print(f"{len(ended)} ended runs would be deleted (with their children and events)")
            return 0
        total = 0
        while True:
            deleted = store.purge(before)
            total += len(deleted)
            if not deleted:
                break
    finally:
        store.close()
    print(f"deleted {total} ended runs (with their children and events)")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from .ids import shown
    from .runtime import Runtime

    with Runtime(args.store) as rt:
        try:
            asked = rt.cancel(args.run_id)
        except (LookupError, ValueError) as e:
            print(shown(f"resumable: {e}"), file=sys.stderr)
            return 1
    if asked:
        print(shown(f"run {args.run_id} is being cancelled: it ends once its finally blocks ran"))
    else:
        print(shown(f"run {args.run_id} was asked to be cancelled already"))
    return 0


def _db_migrate(args: argparse.Namespace) -> int:
    """Open the store for writing, which creates or migrates its schema
    (under a lock, once however many processes do it at once)."""
    from .store import SCHEMA_VERSION, open_store

    open_store(args.store).close()
    print(f"the store's schema is at version {SCHEMA_VERSION}")
    return 0


def _schedules_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schedules = sub.add_parser("schedules", help="look at schedules and delete them")
    schedules_sub = schedules.add_subparsers(
        dest="schedules_command", required=True, metavar="COMMAND"
    )
    listing = schedules_sub.add_parser("list", help="schedules: timing, last and next firing")
    _store_option(listing)
    listing.add_argument("--json", action="store_true", help="JSON output")
    delete = schedules_sub.add_parser(
        "delete", help="delete a schedule (runs it fired stay; it fires no more)"
    )
    _store_option(delete)
    delete.add_argument("schedule_id", metavar="SCHEDULE_ID")


def _schedules(args: argparse.Namespace) -> int:
    from . import schedules
    from .ids import shown
    from .store import describe, open_store

    # Read-only first: a path with no store is an error, never a new empty
    # store, and listing never migrates, locks or waits.
    store = open_store(args.store, readonly=True)
    try:
        if args.schedules_command == "list":
            found = store.schedules()
            if args.json:
                sys.stdout.buffer.write(schedules.list_json(found) + b"\n")
            else:
                print(schedules.list_text(found))
            return 0
        known = store.get_schedule(args.schedule_id) is not None
    finally:
        store.close()
    if not known:
        print(
            shown(f"resumable: no schedule {args.schedule_id!r} in {describe(args.store)}"),
            file=sys.stderr,
        )
        return 1
    store = open_store(args.store)
    try:
        store.delete_schedule(args.schedule_id)
    finally:
        store.close()
    print(shown(f"schedule {args.schedule_id} deleted: it fires no more (its runs stay)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
