"""Property tests of orders.place_order with resumable's pytest plugin.

pip install 'resumable[compiler,testing]'
resumable compile examples/testing
python -m pytest examples/testing
"""

from __future__ import annotations

import orders
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable.testing import Faults, assert_equivalent, check_faults
from resumable.testing import strategies as rst
from resumable.testing.plugin import TestRuntime

ITEMS = st.lists(
    rst.from_annotation(orders.Item).filter(lambda i: abs(i.qty) < 100 and abs(i.price) < 10**5),
    max_size=4,
)


@settings(max_examples=30, deadline=None)
@given(rst.arguments(orders.place_order, items=ITEMS))
def test_compiled_matches_original(call: rst.Arguments) -> None:
    # the original coroutine against the compiled machine, crashing after
    # every checkpoint and resuming from the stored JSON
    assert_equivalent(orders.place_order, *call.args, **call.kwargs)


@settings(max_examples=30, deadline=None)
@given(
    rst.arguments(orders.place_order, items=ITEMS),
    rst.fault_schedules(max_calls=6, max_failures=5, max_checkpoints=6),
)
def test_survives_faults_and_crashes(call: rst.Arguments, faults: Faults) -> None:
    # failing steps are retried (4 attempts), a dead process resumes from the
    # store: the order ends as the original would under the faults left over
    run = check_faults(orders.place_order, faults, *call.args, **call.kwargs)
    if not run.faults.fail:
        assert run.attempts == {n: 1 for n in run.attempts}


def test_ships_after_a_day_at_once(resumable_runtime: TestRuntime) -> None:
    items = [orders.Item("book", 2, 1500)]
    result = resumable_runtime.run(orders.place_order, "o-1", items, run_id="o-1")
    assert result["status"] == "shipped"
    assert resumable_runtime.clock.elapsed == 86400  # a day of the clock's, none of yours


def test_declined_payment_releases_stock(resumable_runtime: TestRuntime) -> None:
    items = [orders.Item("car", 1, 2_000_000)]
    result = resumable_runtime.run(orders.place_order, "o-2", items)
    assert result == {"order": "o-2", "status": "declined", "total": 2_000_000}
    assert resumable_runtime.clock.waits == []  # PaymentDeclined is not retried
