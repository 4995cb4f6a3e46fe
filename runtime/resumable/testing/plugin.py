"""The pytest plugin of resumable (registered as `resumable` through the
`pytest11` entry point: installing resumable enables it).

    def test_nap(resumable_runtime):
        assert resumable_runtime.run(nap_a_day) == "rested"
        assert resumable_runtime.clock.elapsed == 86400    # no real time passed

`resumable_runtime`: a `resumable.Runtime` of the test's own, on an isolated
store, with a `FakeClock` (`resumable_runtime.clock`: `advance(seconds)`,
`elapsed`, `waits`, `on_wait`) and a fixed jitter seed. The store is
`memory://` by default (nothing to clean up, nothing shared between tests);
`sqlite` is a file in the test's tmp_path, which a second Runtime can open
(`resumable_runtime.restart()`: a new Runtime on the same store and clock, as
a new process would be). Choose per test with
`@pytest.mark.parametrize("resumable_runtime", ["memory", "sqlite"],
indirect=True)`, or for a whole session with `--resumable-store=sqlite`.

`resumable_clock`: the same FakeClock, for tests that only need the time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..runtime import Runtime
from .clock import FakeClock

__all__ = ["TestRuntime", "resumable_clock", "resumable_runtime"]

STORES = ("memory", "sqlite")


class TestRuntime(Runtime):
    """A Runtime on a test's store with a FakeClock (see the module docstring)."""

    __test__ = False  # not a test class for pytest

    clock: FakeClock

    def __init__(self, store: str, clock: FakeClock, seed: int = 0, **options: Any) -> None:
        super().__init__(store, clock=clock, seed=seed, **options)
        self.options = options
        self.seed = seed
        self.others: list[Runtime] = []

    def restart(self, **options: Any) -> TestRuntime:
        """A fresh Runtime on the same store and clock (a new process). Only
        for a store that outlives its Runtime (sqlite)."""
        if self.url.startswith("memory:"):
            raise RuntimeError(
                "restart() needs a store that outlives its Runtime: parametrize "
                'resumable_runtime with "sqlite" (memory:// belongs to one Runtime)'
            )
        rt = TestRuntime(self.url, self.clock, self.seed, **(options or self.options))
        self.others.append(rt)
        return rt

    def close(self) -> None:
        for rt in self.others:
            rt.close()
        self.others.clear()
        super().close()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resumable")
    group.addoption(
        "--resumable-store",
        choices=STORES,
        default="memory",
        help="the store of the resumable_runtime fixture (default: memory)",
    )


@pytest.fixture
def resumable_clock() -> FakeClock:
    """A FakeClock (shared with resumable_runtime when both are used)."""
    return FakeClock()


@pytest.fixture
def resumable_runtime(
    request: pytest.FixtureRequest, tmp_path: Path, resumable_clock: FakeClock
) -> Iterator[TestRuntime]:
    """A Runtime with an isolated store and a FakeClock (module docstring)."""
    kind = getattr(request, "param", None) or request.config.getoption("--resumable-store")
    if kind == "memory":
        url = "memory://"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'resumable-state.db'}"
    elif isinstance(kind, str) and "://" in kind:
        url = kind  # a URL of the test's choosing
    else:
        raise ValueError(f"resumable_runtime: a store is one of {STORES} or a URL, not {kind!r}")
    rt = TestRuntime(url, resumable_clock)
    try:
        yield rt
    finally:
        rt.close()
