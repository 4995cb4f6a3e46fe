"""Testing kit: check a decorated function's compiled machine against its
original coroutine, property-test it with hypothesis, and run it on a store
and a clock of a test's own.

    from resumable.testing import assert_equivalent, FakeClock, check_faults
    from resumable.testing import strategies      # needs hypothesis

pytest and hypothesis are not needed to import this package: the pytest
plugin (`resumable.testing.plugin`, registered as `resumable` in the
`pytest11` entry points) and `resumable.testing.strategies` import them.
See docs/testing.md.
"""

from __future__ import annotations

from .clock import FakeClock, WaitsForever, virtual_time_loop
from .core import (
    Outcome,
    Script,
    SimulatedCrash,
    StepError,
    _difference,  # noqa: F401  (tests format outcomes with it)
    assert_equivalent,
    equivalent,
    exception_signature,
    first_divergence,
    run_compiled,
    run_original,
    scripted,
    step,
    step_value,
)
from .faults import FaultRun, Faults, InjectedFault, check_faults, run_with_faults

__all__ = [
    "FakeClock",
    "FaultRun",
    "Faults",
    "InjectedFault",
    "Outcome",
    "Script",
    "SimulatedCrash",
    "StepError",
    "WaitsForever",
    "assert_equivalent",
    "check_faults",
    "equivalent",
    "exception_signature",
    "first_divergence",
    "run_compiled",
    "run_original",
    "run_with_faults",
    "scripted",
    "step",
    "step_value",
    "virtual_time_loop",
]
