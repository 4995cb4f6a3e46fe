"""Every figure of docs/performance.md, in one command.

    python bench/all.py            # the full run (about 5 minutes on 2 cores)
    python bench/all.py --quick    # a smoke run (about 2 minutes): the numbers are not the figures
    python bench/all.py --only hot_path,compiler_speed

Runs each figure script of `FIGURES` in a process of its own (each with
`--json`), then prints one table: every measured row (median and spread),
and every target with its ratio and met / not met / not measured. Writes
the numbers to docs/performance-results.json and the plots (matplotlib, a
bench-only package: bench/requirements.txt) to docs/performance-*.png. A
figure whose script fails is reported as failed, and its targets as not
measured; the command then exits 1. A full run (not --quick) exits 1 too
when a target is not met, with --strict.

Needs the compiler (`pip install -e '.[compiler]'`). PostgreSQL figures
read the server's URL from $RESUMABLE_TEST_POSTGRES (else
postgresql://postgres@127.0.0.1:5432/test) and say "not measured" when it
is not reachable; the DBOS figure installs DBOS Transact into a venv of its
own (bench/.venv-dbos) and says "not measured" when it cannot.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from report import Figure, Target, read

HERE = Path(__file__).parent
DOCS = HERE.parent / "docs"

#: The figure scripts, in the order they run (each `bench/<name>.py`).
FIGURES = [
    "hot_path",
    "sqlite_commits",
    "resume",
    "dbos_compare",
    "workers",
    "compiler_speed",
    "memory",
]


def run_figure(name: str, quick: bool, folder: Path) -> tuple[Figure | None, str, float]:
    out = folder / f"{name}.json"
    command = [sys.executable, str(HERE / f"{name}.py"), "--json", str(out)]
    if quick:
        command.append("--quick")
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    took = time.perf_counter() - start
    log = done.stdout + done.stderr
    if done.returncode != 0 or not out.exists():
        return None, log, took
    return read(out), log, took


def verdict(target: Target) -> str:
    met = target.met
    return "not measured" if met is None else "met" if met else "NOT MET"


def number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def print_table(figures: dict[str, Figure | None]) -> None:
    print("\n## Measurements\n")
    print("| figure | what | median | unit | spread |")
    print("|---|---|---:|---|---:|")
    for name, figure in figures.items():
        if figure is None:
            print(f"| {name} | (the script failed: see its output above) | — | | |")
            continue
        for row in figure.rows:
            spread = row.get("spread")
            shown = f"±{spread * 100:.0f}%" if spread else ""
            print(f"| {name} | {row['what']} | {number(row['value'])} | {row['unit']} | {shown} |")
    print("\n## Targets\n")
    print("| target | ratio | limit | spread | verdict | made of |")
    print("|---|---:|---:|---:|---|---|")
    for name, figure in figures.items():
        targets = figure.targets if figure is not None else []
        if figure is None:
            print(f"| {name}: every target | — | | | not measured | the script failed |")
        for t in targets:
            spread = f"±{t.spread * 100:.0f}%" if t.spread else ""
            made_of = t.detail if t.value is not None else t.note
            print(
                f"| {t.name} | {number(t.value)} | {t.sense} {number(t.limit)} | {spread} "
                f"| {verdict(t)} | {made_of} |"
            )


def plot(figures: dict[str, Figure | None], quick: bool) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plots: matplotlib is not installed (pip install -r bench/requirements.txt)")
        return []
    written = []
    for figure in figures.values():
        if figure is None:
            continue
        for key, series in figure.series.items():
            fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
            for label, line in series["lines"].items():
                ax.plot(line["x"], line["y"], marker="o", label=label)
            ax.set_xlabel(series["xlabel"])
            ax.set_ylabel(series["ylabel"])
            ax.set_title(series["title"] + (" (--quick: not the figures)" if quick else ""))
            if series.get("log_x"):
                ax.set_xscale("log")
            elif all(float(x).is_integer() for line in series["lines"].values() for x in line["x"]):
                ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
            ax.legend()
            fig.tight_layout()
            path = DOCS / f"performance-{key}{'-quick' if quick else ''}.png"
            fig.savefig(path)
            plt.close(fig)
            written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--only", default="", help="comma-separated figure names")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or FIGURES
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figure {', '.join(unknown)}: the figures are {', '.join(FIGURES)}")
    figures: dict[str, Figure | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            print(f"# {name} ...", flush=True)
            figure, log, took = run_figure(name, args.quick, Path(tmp))
            print(log.rstrip())
            print(
                f"# {name}: {'failed' if figure is None else 'done'} in {took:.0f} s\n", flush=True
            )
            figures[name] = figure
    print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    print_table(figures)
    suffix = "-quick" if args.quick else ""
    results = DOCS / f"performance-results{suffix}.json"
    results.write_text(
        json.dumps(
            {
                "quick": args.quick,
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "figures": {
                    name: None if f is None else dataclasses.asdict(f)
                    for name, f in figures.items()
                },
            },
            indent=1,
            default=str,
        )
    )
    written = plot(figures, args.quick)
    print(
        f"\nwrote {results.relative_to(HERE.parent)}",
        *(str(p.relative_to(HERE.parent)) for p in written),
    )
    failed = [n for n, f in figures.items() if f is None]
    missed = [t.name for f in figures.values() if f for t in f.targets if t.met is False]
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 1 if args.strict and missed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
