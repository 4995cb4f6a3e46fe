"""One configuration rule for every entry point: `Runtime()`, `fn.dispatch`,
the worker, `resumable runs list` and `resumable runs retry`.

The store is, first match wins: an argument (`Runtime(url)`, `--store URL`)
or `resumable.configure(store=...)`; then `$RESUMABLE_STORE` (empty means
unset); then `store` in `[tool.resumable]` of ./pyproject.toml (a relative
SQLite path there is relative to that file's folder); then
`sqlite:///.resumable/state.db`. The URL is made absolute when it is
resolved, so a process that changes its working directory afterwards keeps
its store. `--store ""` is an error. Every entry point logs the absolute
store it uses and where it came from: `Runtime()` (and so `fn.dispatch`) on
the logger "resumable" at INFO, the worker on its first stdout line, the
`runs` commands on stderr.

Each test runs its entry point in a subprocess, in a project folder it
controls, once per source of configuration, and looks at which of four
SQLite files the run went to.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from resumable import Runtime
from tests.compiled import import_file
from tests.procs import clean_env, compile_module, python, resumable_cmd, rows

MODULE = "config_jobs"

JOBS = '''
"""Functions for tests/test_config.py."""

import resumable

ONCE = resumable.Retry(max_attempts=1)


@resumable.function(retry=ONCE)
async def double(x: int) -> int:
    return 2 * x


@resumable.function(retry=ONCE)
async def broken(x: int) -> int:
    raise ValueError(f"broken {x}")
'''

#: The relative store in the project's pyproject.toml.
PYPROJECT_STORE = "sqlite:///var/from-pyproject.db"

#: How the store is given, and which of the four files it names.
SOURCES = {
    "argument": "arg",  # the environment and pyproject.toml are set too
    "configure": "arg",  # resumable.configure(store=...): likewise
    "environment": "env",  # pyproject.toml is there too
    "empty environment": "pyproject",  # RESUMABLE_STORE="" is unset
    "pyproject": "pyproject",
    "default": "default",
}


@dataclass
class Project:
    folder: Path  # the working directory of the entry point
    stores: dict[str, Path]  # arg, env, pyproject, default: the four files
    modules: Path  # where config_jobs.py is

    def url(self, name: str) -> str:
        return f"sqlite:///{self.stores[name]}"

    def env(self, source: str) -> dict[str, str]:
        """The environment of an entry point for this source of configuration;
        also writes (or removes) the project's pyproject.toml."""
        pyproject = self.folder / "pyproject.toml"
        if source == "default":
            pyproject.unlink(missing_ok=True)
        else:
            pyproject.write_text(f'[tool.resumable]\nstore = "{PYPROJECT_STORE}"\n')
        env = clean_env(PYTHONPATH=f"{self.modules}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        if source in ("argument", "configure", "environment"):
            env["RESUMABLE_STORE"] = self.url("env")
        elif source == "empty environment":
            env["RESUMABLE_STORE"] = ""
        return env

    def where(self, name: str) -> set[str]:
        """The run ids in store `name`."""
        return {row["run_id"] for row in rows(self.stores[name])}

    def status(self, name: str, run_id: str) -> str | None:
        found = rows(self.stores[name], "run_id = ?", run_id)
        return found[0]["status"] if found else None


def origin(project: Project, source: str, *, cli: bool = False) -> str:
    """How an entry point names where its store came from."""
    return {
        "argument": "the argument",
        "configure": "resumable.configure(store=...)",
        "environment": "$RESUMABLE_STORE",
        "empty environment": f"[tool.resumable] in {project.folder / 'pyproject.toml'}",
        "pyproject": f"[tool.resumable] in {project.folder / 'pyproject.toml'}",
        "default": "the default",
    }[source]


def store_line(project: Project, source: str) -> str:
    """`store <absolute URL> (from <origin>)`, as every entry point logs it."""
    return f"store {project.url(SOURCES[source])} (from {origin(project, source)})"


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("config_modules")
    compile_module(folder, MODULE, JOBS)
    return folder


@pytest.fixture(scope="module")
def jobs(modules: Path) -> Iterator[ModuleType]:
    yield import_file(modules / f"{MODULE}.py", MODULE)
    sys.modules.pop(MODULE, None)


@pytest.fixture
def project(modules: Path, tmp_path: Path) -> Project:
    folder = tmp_path / "project"
    folder.mkdir()
    return Project(
        folder=folder,
        stores={
            "arg": tmp_path / "from-argument.db",
            "env": tmp_path / "from-env.db",
            "pyproject": folder / "var" / "from-pyproject.db",
            "default": folder / ".resumable" / "state.db",
        },
        modules=modules,
    )


@pytest.fixture
def filled(project: Project, jobs: ModuleType) -> Project:
    """Each of the four stores holds a run named after it (pending), the
    pending run `w`, and the failed run `job`."""
    for name, path in project.stores.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with Runtime(f"sqlite:///{path}") as rt:
            rt.dispatch(jobs.double, 1, run_id=name)
            rt.dispatch(jobs.double, 5, run_id="w")
            with pytest.raises(ValueError, match="broken"):
                rt.run(jobs.broken, 1, run_id="job")
    return project


def only_in(project: Project, run_id: str, name: str) -> None:
    """`run_id` is in store `name` and in no other."""
    holding = sorted(n for n in project.stores if run_id in project.where(n))
    assert holding == [name], f"run {run_id!r} is in {holding}, expected only in {name!r}"


LOGGED = """
import logging, sys
logging.basicConfig(
    level=logging.INFO, stream=sys.stderr, format="LOG %(name)s %(levelname)s %(message)s"
)
"""


# ------------------------------------------------------------------ Runtime()


@pytest.mark.parametrize("source", list(SOURCES))
def test_runtime(project: Project, source: str) -> None:
    # Runtime() resolves the store once, to an absolute URL: it changes
    # directory before it runs, and the run still goes to that store.
    program = (
        LOGGED
        + f"""
import os, resumable, {MODULE} as jobs
source, arg = sys.argv[1], sys.argv[2]
if source == "configure":
    resumable.configure(store=arg)
rt = resumable.Runtime(arg) if source == "argument" else resumable.Runtime()
os.chdir("/")
print(rt.run(jobs.double, 21, run_id="rt"))
"""
    )
    proc = python(program, source, project.url("arg"), cwd=project.folder, env=project.env(source))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "42"
    only_in(project, "rt", SOURCES[source])
    assert (
        f"LOG resumable INFO resumable: {store_line(project, source)}" in proc.stderr.splitlines()
    )


def test_runtime_refuses_an_empty_store(project: Project) -> None:
    program = """
import resumable
for make in (lambda: resumable.Runtime(""), lambda: resumable.configure(store="")):
    try:
        make()
    except resumable.StoreError as e:
        print("StoreError", e)
    else:
        print("accepted")
"""
    proc = python(program, cwd=project.folder, env=project.env("environment"))
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()] == ["StoreError"] * 2
    assert all(not path.exists() for path in project.stores.values())


# ------------------------------------------------------------------ fn.dispatch


@pytest.mark.parametrize("source", [s for s in SOURCES if s != "argument"])
def test_dispatch(project: Project, source: str) -> None:
    program = (
        LOGGED
        + f"""
import os, resumable, {MODULE} as jobs
if sys.argv[1] == "configure":
    resumable.configure(store=sys.argv[2])
print(jobs.double.dispatch(3, run_id="d"))
"""
    )
    proc = python(program, source, project.url("arg"), cwd=project.folder, env=project.env(source))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "d"
    only_in(project, "d", SOURCES[source])
    assert project.status(SOURCES[source], "d") == "pending"
    assert (
        f"LOG resumable INFO resumable: {store_line(project, source)}" in proc.stderr.splitlines()
    )


def test_dispatch_with_a_relative_configured_store_keeps_it_after_chdir(project: Project) -> None:
    # resumable.configure(store=<relative>) names a file relative to where
    # the process was when it configured, not where it is when it dispatches.
    program = f"""
import os, resumable, {MODULE} as jobs
resumable.configure(store="sqlite:///configured.db")
os.mkdir("elsewhere")
os.chdir("elsewhere")
print(jobs.double.dispatch(3, run_id="d"))
"""
    proc = python(program, cwd=project.folder, env=project.env("default"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {row["run_id"] for row in rows(project.folder / "configured.db")} == {"d"}
    assert not (project.folder / "elsewhere" / "configured.db").exists()


# ------------------------------------------------------------------ the worker


def worker_args(project: Project, source: str) -> list[str]:
    store = ["--store", project.url("arg")] if source == "argument" else []
    return ["worker", *store, "--module", MODULE, "--drain"]


@pytest.mark.parametrize("source", [s for s in SOURCES if s != "configure"])
def test_worker(filled: Project, source: str) -> None:
    project = filled
    proc = resumable_cmd(*worker_args(project, source), cwd=project.folder, env=project.env(source))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    chosen = SOURCES[source]
    for name in project.stores:
        assert project.status(name, "w") == ("completed" if name == chosen else "pending"), name
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"resumable worker: {store_line(project, source)}, "), first


# ------------------------------------------------------------------ resumable runs


@pytest.mark.parametrize("source", [s for s in SOURCES if s != "configure"])
def test_runs_list(filled: Project, source: str) -> None:
    project = filled
    store = ["--store", project.url("arg")] if source == "argument" else []
    proc = resumable_cmd("runs", "list", *store, cwd=project.folder, env=project.env(source))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines()[1:]}
    assert listed == {SOURCES[source], "w", "job"}
    assert f"resumable: {store_line(project, source)}" in proc.stderr.splitlines()


@pytest.mark.parametrize("source", [s for s in SOURCES if s != "configure"])
def test_runs_retry(filled: Project, source: str) -> None:
    project = filled
    store = ["--store", project.url("arg")] if source == "argument" else []
    proc = resumable_cmd(
        "runs", "retry", "job", *store, cwd=project.folder, env=project.env(source)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    chosen = SOURCES[source]
    for name in project.stores:
        assert project.status(name, "job") == ("pending" if name == chosen else "failed"), name
    assert f"resumable: {store_line(project, source)}" in proc.stderr.splitlines()


@pytest.mark.parametrize(
    "command",
    [["worker", "--module", MODULE, "--drain"], ["runs", "list"], ["runs", "retry", "job"]],
)
def test_an_empty_store_option_is_an_error(project: Project, command: list[str]) -> None:
    proc = resumable_cmd(
        *command, "--store", "", cwd=project.folder, env=project.env("environment")
    )
    assert proc.returncode != 0, proc.stdout
    assert "store URL ''" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert all(not path.exists() for path in project.stores.values())
