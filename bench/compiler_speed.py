"""Compiler speed: compiling a large module, and a no-change recompile.

    python bench/compiler_speed.py            # a few minutes
    python bench/compiler_speed.py --quick    # a smoke check (well under a minute)
    python bench/compiler_speed.py --profile  # then a pyinstrument profile of one compile

Needs the compiler (`pip install -e '.[compiler]'`). Three figures, each
measured side by side with its baseline in the same rounds (absolute times
drift on a shared machine; the ratios hold):

1. Compiling a generated 10,000-line module, 10% of it `@resumable.function`
   async functions (awaits in loops, try/except/finally, with, comprehensions,
   if/elif), the rest ordinary Python (classes, functions, constants), with
   `compile_file` in this process (the output removed before each round),
   against bare libcst on the same text: `parse_module(source)` then
   `module.code` (the least any libcst-based compiler does). Ratio: compile
   / libcst, per round, the order alternating; one compile first, unmeasured
   (imports, the template).
2. A no-change recompile of a 50-module tree (every generated module up to
   date), `resumable compile <tree>` as a process of its own, against
   `python -c 'import resumable'`, interleaved in rounds. Ratio: recompile /
   import, per round. The recompile must not import libcst: the script checks
   it (`python -X importtime`) and says so.
3. The peak RSS (VmHWM) of a process that only compiles the 10,000-line
   module, beside that of one that only parses and renders it with libcst
   (no target: reported).

The module is generated here, the same every run: a prelude, then
`@resumable.function`s of four shapes (about 20 lines each) among plain
classes, functions and constants, until it has 10,000 lines. The tree is 50
modules of about 200 lines made the same way, in five packages.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from report import Figure, Target, median_and_spread, write

ROOT = Path(__file__).resolve().parent.parent

#: Lines of the large module, and the share of them in decorated functions.
LINES = 10_000
DECORATED_SHARE = 0.10
#: Modules of the no-change tree.
TREE_MODULES = 50


# --- the module --------------------------------------------------------------


def _decorated(i: int) -> str:
    """One `@resumable.function` of about 30 lines; `i` varies its shape."""
    kind = i % 4
    if kind == 0:
        body = f"""
        @resumable.function
        async def process_batch_{i}(user_id: str, items: list[str]) -> dict[str, int]:
            \"\"\"Charge each item, retrying a refusal once.\"\"\"
            totals: dict[str, int] = {{}}
            count = 0
            for n, item in enumerate(items):
                if not item:
                    continue
                try:
                    amount = await charge(user_id, item, n * {i % 7 + 1})
                except RefusedError as e:
                    log(f"refused {{item}}: {{e}}")
                    amount = await charge(user_id, item, 0)
                else:
                    count += 1
                finally:
                    totals[item] = totals.get(item, 0) + 1
                if count > LIMIT_{i % 10}:
                    break
            total = sum(totals.values())
            await notify(user_id, f"{{count}} of {{len(items)}} charged, {{total}} seen")
            return totals
        """
    elif kind == 1:
        body = f"""
        @resumable.function
        async def sync_account_{i}(account: str, pages: int = 3) -> list[str]:
            seen = []
            page = 0
            while page < pages:
                rows = await fetch_page(account, page)
                for row in rows:
                    if row.startswith("#"):
                        continue
                    elif row in seen:
                        await notify(account, f"duplicate {{row}}")
                    else:
                        seen.append(row)
                page += 1
            else:
                log("all pages of %s" % account)
            seen.sort(key=lambda r: (len(r), r))
            with Timer("sync_{i}") as t:
                stored = await store_rows(account, seen)
                t.mark(stored)
            return [r.upper() for r in seen if r]
        """
    elif kind == 2:
        body = f"""
        @resumable.function
        async def review_order_{i}(order_id: str, reviewers: list[str]) -> str:
            verdicts = [await ask(r, order_id) for r in reviewers]
            approved = sum(1 for v in verdicts if v == "yes")
            if approved >= len(reviewers) // 2 + 1:
                status = "approved"
            elif approved == 0:
                status = "rejected"
            else:
                status = await escalate(order_id, approved)
            try:
                await record(order_id, status)
            except (TimeoutError, ConnectionError):
                await record(order_id, status + "?")
                raise
            message = f"order {{order_id}}: {{status}} ({{approved}}/{{len(reviewers)}})"
            return message
        """
    else:
        body = f"""
        @resumable.function
        async def ship_{i}(order: dict[str, object], attempts: int = {i % 5 + 2}) -> bool:
            address = order.get("address") or DEFAULT_ADDRESS
            for attempt in range(attempts):
                label = await make_label(address, attempt)
                if label is None:
                    await resumable.sleep(attempt * 2)
                    continue
                ok = await send(label) and await confirm(label)
                if ok:
                    return True
            while True:
                answer = await ask("ops", f"ship {{order!r}} by hand?")
                if answer in ("yes", "no"):
                    break
            return answer == "yes"
        """
    return textwrap.dedent(body).lstrip("\n")


def _plain(i: int) -> str:
    """Ordinary Python of about 40 lines: a class, functions, constants."""
    kind = i % 3
    if kind == 0:
        body = f'''
        LIMIT_{i % 10}_{i} = {i * 3 + 1}
        NAMES_{i} = ("alpha", "beta", "gamma", "delta_{i}")


        class Account{i}:
            """An account with a balance and a history."""

            kind = "account-{i}"

            def __init__(self, owner: str, balance: int = 0) -> None:
                self.owner = owner
                self.balance = balance
                self.history: list[tuple[str, int]] = []

            def deposit(self, amount: int) -> int:
                if amount <= 0:
                    raise ValueError(f"cannot deposit {{amount}}")
                self.balance += amount
                self.history.append(("deposit", amount))
                return self.balance

            def withdraw(self, amount: int) -> int:
                if amount > self.balance:
                    raise ValueError("insufficient funds")
                self.balance -= amount
                self.history.append(("withdraw", amount))
                return self.balance

            @property
            def summary(self) -> str:
                kinds = {{k for k, _ in self.history}}
                return ", ".join(sorted(kinds)) or "nothing yet"

            def __repr__(self) -> str:
                return f"Account{i}({{self.owner!r}}, {{self.balance}})"
        '''
    elif kind == 1:
        body = f'''
        def parse_row_{i}(line: str, sep: str = ",") -> dict[str, str]:
            """Split a CSV-ish row into a dict."""
            parts = [p.strip() for p in line.split(sep)]
            if len(parts) < 2:
                return {{}}
            key, *rest = parts
            out = {{"key": key}}
            for n, value in enumerate(rest):
                if value.isdigit():
                    out[f"f{{n}}"] = str(int(value) * {i % 9 + 1})
                elif value:
                    out[f"f{{n}}"] = value.lower()
            return out


        def checksum_{i}(data: bytes) -> int:
            total = 0
            for n, byte in enumerate(data):
                total = (total * 31 + byte + n) % 1_000_003
            return total


        def classify_{i}(value: float) -> str:
            if value < 0:
                return "negative"
            elif value < {i + 10}:
                return "small"
            elif value < {i * 100 + 1000}:
                return "medium"
            return "large"


        TABLE_{i} = {{
            "a": [1, 2, 3],
            "b": {{"x": 1.5, "y": -2}},
            "c": lambda v: v * {i},
        }}
        '''
    else:
        body = f"""
        class Matrix{i}:
            __slots__ = ("rows", "cols", "data")

            def __init__(self, rows: int, cols: int) -> None:
                self.rows, self.cols = rows, cols
                self.data = [[0.0] * cols for _ in range(rows)]

            def __matmul__(self, other: "Matrix{i}") -> "Matrix{i}":
                out = Matrix{i}(self.rows, other.cols)
                for r in range(self.rows):
                    for c in range(other.cols):
                        out.data[r][c] = sum(
                            self.data[r][k] * other.data[k][c] for k in range(self.cols)
                        )
                return out

            @classmethod
            def identity(cls, n: int) -> "Matrix{i}":
                m = cls(n, n)
                for k in range(n):
                    m.data[k][k] = 1.0
                return m


        def retry_{i}(fn, times: int = 3):
            def wrapper(*args, **kwargs):
                last = None
                for _ in range(times):
                    try:
                        return fn(*args, **kwargs)
                    except Exception as e:  # noqa: BLE001
                        last = e
                raise RuntimeError("gave up") from last

            return wrapper
        """
    return textwrap.dedent(body).lstrip("\n")


_PRELUDE = (
    '''\
"""A generated module for bench/compiler_speed.py: ordinary code with some
resumable functions among it."""

from __future__ import annotations

import resumable

DEFAULT_ADDRESS = "nowhere"
'''
    + "".join(f"LIMIT_{k} = {k * 5 + 3}\n" for k in range(10))
    + """

class RefusedError(Exception):
    pass


class Timer:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def mark(self, value):
        pass


def log(message):
    pass


async def charge(user_id, item, amount):
    return amount


async def notify(user_id, message):
    return None


async def fetch_page(account, page):
    return []


async def store_rows(account, rows):
    return len(rows)


async def ask(who, what):
    return "yes"


async def escalate(order_id, approved):
    return "escalated"


async def record(order_id, status):
    return None


async def make_label(address, attempt):
    return address


async def send(label):
    return True


async def confirm(label):
    return True
"""
)


def make_module(
    lines: int = LINES, share: float = DECORATED_SHARE, first: int = 0
) -> tuple[str, int]:
    """A deterministic module of about `lines` lines, `share` of them in
    decorated functions (numbered from `first`): (source, number of
    decorated functions)."""
    parts = [_PRELUDE]
    total = _PRELUDE.count("\n")
    decorated_lines = 0
    functions = plain = first
    while total < lines:
        if decorated_lines < share * (total + 1):
            chunk = _decorated(functions)
            functions += 1
            decorated_lines += chunk.count("\n")
        else:
            chunk = _plain(plain)
            plain += 1
        chunk = "\n\n" + chunk
        parts.append(chunk)
        total += chunk.count("\n")
    return "".join(parts), functions - first


# --- measuring ---------------------------------------------------------------


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _wall(command: list[str], **kwargs: object) -> float:
    """Wall time of a process, from start to exit; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{command} failed:\n{done.stdout}{done.stderr}")
    return took


def _peak_rss_mb(code: str) -> float:
    """Peak resident set of a Python process running `code`, in MB: its
    VmHWM, which the process reads last (the high-water mark of the program
    exec started; ru_maxrss would count the forked parent's pages too), else
    its ru_maxrss where there is no /proc."""
    probe = (
        code
        + "\nimport os\nif os.path.exists('/proc/self/status'):\n"
        + "    print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", probe], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    printed = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"the RSS probe failed ({proc.returncode}): {code}")
    if "VmHWM:" in printed:
        return int(printed.split("VmHWM:")[1].split()[0]) / 1024  # kB
    return usage.ru_maxrss / 1024  # KiB on Linux


def _resumable_command() -> list[str]:
    """The `resumable` console script of this environment (else `-m resumable`)."""
    script = Path(sys.executable).parent / "resumable"
    return [str(script)] if script.exists() else [sys.executable, "-m", "resumable"]


def big_module(figure: Figure, folder: Path, rounds: int, profile: bool) -> None:
    import libcst

    from resumable_compiler.build import compile_file
    from resumable_compiler.parse import read_source

    source, functions = make_module()
    path = folder / "big.py"
    path.write_text(source, encoding="utf-8")
    out = path.parent / "__resumable__" / path.name
    text = read_source(str(path))

    def ours() -> None:
        out.unlink(missing_ok=True)
        result = compile_file(str(path))
        if result.status != "written":
            raise SystemExit(f"compiling the module: {result.status} {result.errors[:3]}")

    def bare() -> None:
        libcst.parse_module(text).code  # noqa: B018

    ours()  # imports, templates: not what is measured
    compiles, bares, ratios = [], [], []
    for i in range(rounds):
        pair = (ours, bare) if i % 2 == 0 else (bare, ours)
        times = {f: _timed(f) for f in pair}
        compiles.append(times[ours])
        bares.append(times[bare])
        ratios.append(times[ours] / times[bare])
    lines = source.count("\n")
    decorated = sum(1 for line in source.splitlines() if line.startswith("@resumable.function"))
    assert decorated == functions
    ratio, spread = median_and_spread(ratios)
    c, c_spread = median_and_spread(compiles)
    b, b_spread = median_and_spread(bares)
    what = f"{lines:,}-line module ({functions} decorated functions)"
    figure.row(f"compile_file, {what}", c, "s", c_spread)
    figure.row(f"libcst parse_module + .code, {what}", b, "s", b_spread)
    figure.targets.append(
        Target(
            name="compiler: 10,000-line module vs libcst parse+codegen",
            value=ratio,
            limit=2.0,
            sense="at most",
            detail=f"compile {c:.2f} s / libcst {b:.2f} s",
            spread=spread,
        )
    )
    print(f"\n{what}, {rounds} rounds (median, spread):")
    print(f"  compile_file                 {c:7.3f} s  ±{c_spread * 100:.0f}%")
    print(f"  libcst parse_module + .code  {b:7.3f} s  ±{b_spread * 100:.0f}%")
    print(
        f"  ratio                        {ratio:7.2f}    ±{spread * 100:.0f}%  (target: at most 2)"
    )

    out.unlink(missing_ok=True)
    compile_rss = _peak_rss_mb(
        "from resumable_compiler.build import compile_file\n"
        f"r = compile_file({str(path)!r})\n"
        "assert r.status == 'written', r.status"
    )
    out.unlink(missing_ok=True)
    libcst_rss = _peak_rss_mb(
        f"import libcst\nlibcst.parse_module(open({str(path)!r}).read()).code"
    )
    figure.row(f"peak RSS, compiling the {what} (a process doing only that)", compile_rss, "MB")
    figure.row("peak RSS, libcst parse_module + .code of it", libcst_rss, "MB")
    print(f"  peak RSS: compiling {compile_rss:.0f} MB, libcst parse+code {libcst_rss:.0f} MB")
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
        ours()
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False))


def no_change(figure: Figure, folder: Path, rounds: int) -> None:
    tree = folder / "tree"
    for k in range(TREE_MODULES):
        package = tree / f"pkg{k // 10}"
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").touch()
        source, _ = make_module(lines=200, first=k * 3)
        (package / f"mod{k}.py").write_text(source, encoding="utf-8")
    command = [*_resumable_command(), "compile", str(tree)]
    first = subprocess.run(command, capture_output=True, text=True)
    if first.returncode != 0:
        raise SystemExit(f"compiling the tree failed:\n{first.stdout}{first.stderr}")
    # The no-change recompile: nothing written, no libcst (nor jinja2) imported.
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    again = subprocess.run(command, capture_output=True, text=True, env=env)
    if again.returncode != 0 or "written" in again.stdout:
        raise SystemExit(f"the no-change recompile wrote or failed:\n{again.stdout}")
    imported = [
        line.rsplit("|", 1)[-1].strip() for line in again.stderr.splitlines() if "|" in line
    ]
    heavy = sorted({m for m in imported if m.split(".")[0] in ("libcst", "jinja2")})
    baseline = [sys.executable, "-c", "import resumable"]
    recompiles, imports, ratios = [], [], []
    for i in range(rounds):
        if i % 2 == 0:
            r, b = _wall(command), _wall(baseline)
        else:
            b, r = _wall(baseline), _wall(command)
        recompiles.append(r)
        imports.append(b)
        ratios.append(r / b)
    ratio, spread = median_and_spread(ratios)
    r, r_spread = median_and_spread(recompiles)
    b, b_spread = median_and_spread(imports)
    what = f"`resumable compile` of {TREE_MODULES} up-to-date modules"
    figure.row(f"{what} (whole process)", r * 1000, "ms", r_spread)
    figure.row("python -c 'import resumable' (whole process)", b * 1000, "ms", b_spread)
    figure.row("libcst or jinja2 modules imported by the no-change recompile", len(heavy), "")
    note = f"; it imported {', '.join(heavy[:3])}..." if heavy else ""
    figure.targets.append(
        Target(
            name="compiler: no-change recompile of 50 modules vs import resumable",
            value=ratio if not heavy else None,
            limit=2.0,
            sense="at most",
            detail=f"recompile {r * 1000:.0f} ms / import {b * 1000:.0f} ms",
            spread=spread,
            note="" if not heavy else f"imports libcst (ratio {ratio:.2f}){note}",
        )
    )
    print(f"\n{what}, {rounds} rounds (median, spread):")
    print(f"  resumable compile (no change)  {r * 1000:7.0f} ms  ±{r_spread * 100:.0f}%")
    print(f"  python -c 'import resumable'   {b * 1000:7.0f} ms  ±{b_spread * 100:.0f}%")
    print(
        f"  ratio                          {ratio:7.2f}     ±{spread * 100:.0f}%  (target: at most 2)"
    )
    print(f"  libcst/jinja2 modules imported: {len(heavy)}{note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the figure there (bench/all.py)")
    parser.add_argument("--quick", action="store_true", help="a smoke check: fewer rounds")
    parser.add_argument("--profile", action="store_true", help="pyinstrument of one compile")
    args = parser.parse_args()
    figure = Figure(
        name="compiler_speed",
        setup=f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs",
    )
    with tempfile.TemporaryDirectory() as tmp:
        big_module(figure, Path(tmp), 3 if args.quick else 9, args.profile)
        no_change(figure, Path(tmp), 6 if args.quick else 20)
    write(figure, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
