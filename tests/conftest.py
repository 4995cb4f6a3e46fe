"""Shared fixtures: the case modules under tests/cases are compiled once per
test session (into tests/cases/__resumable__/) and imported from their files."""

from __future__ import annotations

import gc
import importlib.util
import os
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import settings

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")

settings.register_profile("default", deadline=None, print_blob=True)
settings.register_profile("slow", deadline=None, print_blob=True, max_examples=2000)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden from the current compiler",
    )
    parser.addoption(
        "--slow", action="store_true", help="run long property runs (2000 examples) and slow tests"
    )
    parser.addoption(
        "--property-examples",
        type=int,
        default=0,
        metavar="N",
        help="examples of tests/test_property.py's property (default 300; --slow: 2000)",
    )


def pytest_configure(config: pytest.Config) -> None:
    settings.load_profile("slow" if config.getoption("--slow") else "default")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Before a failure or an expected failure is formatted, collect garbage:
    a task left with an unretrieved exception is logged by its finalizer, and
    on 3.11 that formatting parses source with ast; run inside pytest's own
    ast.parse of the report, the nested parse breaks it ("AST constructor
    recursion depth mismatch")."""
    if call.excinfo is not None:
        gc.collect()
    yield


def case_names() -> list[str]:
    return sorted(f[:-3] for f in os.listdir(CASES) if f.endswith(".py") and not f.startswith("_"))


def case_path(name: str) -> str:
    return os.path.join(CASES, name + ".py")


_modules: dict[str, ModuleType] = {}


def load_case(name: str) -> ModuleType:
    """Import tests/cases/<name>.py from its file (native import; no compiled code needed)."""
    if name not in _modules:
        spec = importlib.util.spec_from_file_location(f"cases_{name}", case_path(name))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _modules[name] = module
    return _modules[name]


_compiled: dict[str, str | BaseException] = {}


def compiled_case(name: str) -> str:
    """Compile tests/cases/<name>.py once per session (a failure too); the
    generated module's text."""
    if name not in _compiled:
        from resumable_compiler.build import compile_file

        try:
            result = compile_file(case_path(name))
            assert not result.errors, "\n".join(str(e) for e in result.errors)
            with open(result.output, encoding="utf-8") as f:
                _compiled[name] = f.read()
        except (Exception, AssertionError) as e:
            _compiled[name] = e
    outcome = _compiled[name]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


# -------------------------------------------------------------------- PostgreSQL

POSTGRES_ENV = "RESUMABLE_TEST_POSTGRES"
HOW_TO_ENABLE = (
    f"PostgreSQL tests: set {POSTGRES_ENV}=postgresql://postgres@127.0.0.1:5432/test "
    "(a server where that user may create databases) to run them"
)


def _postgres_unavailable(reason: str) -> None:
    """Skip, or fail in CI (CI_REQUIRE_POSTGRES=1, set by .ci/run)."""
    if os.environ.get("CI_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"CI_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of this test session (dropped at its end): its URL."""
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        _postgres_unavailable(HOW_TO_ENABLE)
    try:
        import psycopg
    except ImportError:
        _postgres_unavailable("psycopg is not installed: pip install -e '.[dev]'")
    name = f"resumable_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as e:
        _postgres_unavailable(f"the PostgreSQL server of {POSTGRES_ENV}={url} is unusable: {e}")
    parts = urllib.parse.urlsplit(url)
    yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """An empty store of its own (a schema) with short leases."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    return f"{postgres_database}?schema={schema}&lease=3&heartbeat=0.5"
