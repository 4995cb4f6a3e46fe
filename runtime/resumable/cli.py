"""The `resumable` command.

    resumable compile PATH... [--check]    (needs the compiler: pip install 'resumable[compiler]')

The compiler is imported only for `compile`, so deployed images without it
can still run the other commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resumable", description="Resumable async functions.")
    sub = parser.add_subparsers(dest="command", required=True)
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
    return parser


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
        return compile_main(args.paths, check=args.check)
    return 2  # pragma: no cover (argparse rejects unknown commands)


if __name__ == "__main__":
    sys.exit(main())
