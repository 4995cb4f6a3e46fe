"""The designed differences between compiled functions and their originals
(docs/semantics.md, "Known differences"). Each test runs the original under
asyncio and the compiled machine (crash and resume after every checkpoint)
and asserts the documented behaviour of both."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import resumable
from resumable.testing import run_compiled, run_original, step_value
from tests.compiled import compile_and_import

CASES = Path(__file__).parent / "deviations" / "cases.py"


def line_of(snippet: str) -> int:
    text = CASES.read_text()
    assert text.count(snippet) == 1, snippet
    return text[: text.index(snippet)].count("\n") + 1


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    target = tmp_path_factory.mktemp("deviations") / "deviation_cases.py"
    shutil.copy(CASES, target)
    yield compile_and_import(target, "deviation_cases")
    sys.modules.pop("deviation_cases", None)


def test_a_global_read_before_an_await_is_read_after_it(cases: ModuleType) -> None:
    # Globals are not checkpointed: `COUNT + await bump()` reads COUNT after
    # the await, so it sees the rebinding bump() made.
    assert run_original(cases.global_read_before_await).value == 1 + step_value("bump", (101,))
    assert run_compiled(cases.global_read_before_await).value == 101 + step_value("bump", (101,))


def test_a_method_is_looked_up_after_the_awaited_argument(cases: ModuleType) -> None:
    # Bound methods cannot be checkpointed: the receiver is kept, the
    # attribute is looked up after the await.
    cases.NS.fn = lambda: "old"
    assert run_original(cases.method_looked_up_after_await).error is not None  # old() takes no args
    cases.NS.fn = lambda: "old"
    outcome = run_compiled(cases.method_looked_up_after_await)
    assert isinstance(outcome.error, TypeError)
    assert "<lambda>() takes 0 positional arguments" in str(outcome.error)
    assert cases.NS.fn() == "new"


def test_arguments_and_values_after_a_checkpoint_are_copies(cases: ModuleType) -> None:
    native_items: list[str] = []
    assert asyncio.run(cases.argument_is_a_copy(native_items)) == 1
    assert native_items == ["added after the checkpoint"]
    compiled_items: list[str] = []
    assert resumable.Runtime("memory://").run(cases.argument_is_a_copy, compiled_items) == 1
    assert compiled_items == []  # the function appended to its decoded copy


def test_a_method_changes_only_its_copy_of_self(cases: ModuleType) -> None:
    # A method awaited in a run is a child run with `self` among its arguments,
    # a decoded copy: what it does to `self` reaches the caller only through
    # its return value. Natively the caller's object is changed.
    added = step_value("add", (1,))
    assert run_original(cases.method_changes_its_copy_of_self).value == (added, added)
    assert run_compiled(cases.method_changes_its_copy_of_self).value == (added, 0)
    # Run directly, the same: the caller's object is the run's argument, copied.
    tally = cases.Tally()
    assert resumable.Runtime("memory://").run(tally.add, 1) == added
    assert tally.count == 0
    assert asyncio.run(tally.add(1)) == added and tally.count == added  # natively


def test_a_mutable_default_is_not_shared_across_runs(cases: ModuleType) -> None:
    default = cases.mutable_default.__wrapped__.__defaults__[0]
    default.clear()
    assert run_compiled(cases.mutable_default).value == 1
    assert run_compiled(cases.mutable_default).value == 1  # each run appends to a copy
    assert default == []
    assert run_original(cases.mutable_default).value == 1
    assert run_original(cases.mutable_default).value == 2  # natively, the same list object
    default.clear()


def test_a_loop_over_a_generator_whose_body_awaits_is_refused(cases: ModuleType) -> None:
    assert run_original(cases.loop_over_generator).value > 0
    outcome = run_compiled(cases.loop_over_generator)
    assert isinstance(outcome.error, resumable.SerializationError)
    message = str(outcome.error)
    line = line_of("for n in numbers():")
    assert (
        f"deviation_cases.py:{line}" in message and "`generator`" in message and "list(" in message
    )
    assert outcome.calls == []  # refused at loop entry, before any iteration


def test_a_comprehension_over_a_generator_that_awaits_is_refused(cases: ModuleType) -> None:
    assert run_original(cases.comprehension_over_generator).value == [
        step_value("n", (n,)) for n in (1, 2, 3)
    ]
    outcome = run_compiled(cases.comprehension_over_generator)
    assert isinstance(outcome.error, resumable.SerializationError)
    message = str(outcome.error)
    line = line_of('return [await step("n", n) for n in numbers()]')
    assert message.startswith("the comprehension at ")
    assert f"deviation_cases.py:{line} iterates a `generator`" in message and "list(" in message
    assert outcome.calls == []  # refused at its entry, before any item


def test_a_comprehension_that_cannot_be_encoded_names_the_list(cases: ModuleType) -> None:
    assert run_original(cases.comprehension_builds_unserializable_list).value == [7, 8]
    outcome = run_compiled(cases.comprehension_builds_unserializable_list)
    assert isinstance(outcome.error, resumable.SerializationError)
    line = line_of("spaces = [types.SimpleNamespace(x=await step")
    message = str(outcome.error)
    assert f"the list built on line {line} holds a `types.SimpleNamespace`" in message, message


def test_an_unbound_comprehension_variable_is_named_by_its_hidden_name(
    cases: ModuleType,
) -> None:
    # A comprehension variable read before the clause that binds it (`for y
    # in y`) raises UnboundLocalError naming its hidden variable.
    native = run_original(cases.comprehension_reads_a_later_clause_variable).error
    assert isinstance(native, UnboundLocalError) and "'y'" in str(native)
    compiled = run_compiled(cases.comprehension_reads_a_later_clause_variable).error
    assert isinstance(compiled, UnboundLocalError) and "'_v2'" in str(compiled)


def test_a_generator_escaping_a_comprehension_that_awaits(cases: ModuleType) -> None:
    # A generator expression inside a comprehension that awaits reads the
    # comprehension's variable when it runs; once the comprehension ended,
    # that variable is deleted (natively it keeps its last value). Held
    # across an await, the generator could not be stored anyway.
    assert run_original(cases.comprehension_returns_lazy_generators).value == [[0, 2]]
    outcome = run_compiled(cases.comprehension_returns_lazy_generators)
    assert isinstance(outcome.error, NameError) and "'_v1'" in str(outcome.error)


def test_an_unbound_local_read_in_a_comprehension(cases: ModuleType) -> None:
    # CPython 3.11 reads a function's local inside a comprehension as a free
    # variable (NameError when unbound); compiled code reads it from the
    # locals (UnboundLocalError, CPython 3.12's behaviour).
    native = run_original(cases.comprehension_reads_an_unbound_local).error
    assert type(native) is NameError and "free variable 'e'" in str(native)
    compiled = run_compiled(cases.comprehension_reads_an_unbound_local).error
    assert type(compiled) is UnboundLocalError and "local variable 'e'" in str(compiled)


def test_a_value_that_cannot_be_encoded_is_refused_at_the_checkpoint(cases: ModuleType) -> None:
    assert run_original(cases.unserializable_local).value == 1
    outcome = run_compiled(cases.unserializable_local)
    assert isinstance(outcome.error, resumable.SerializationError)
    line = line_of('await step("a")\n    return ns.x')
    assert "variable `ns`" in str(outcome.error) and f"line {line}" in str(outcome.error)


def test_a_cancelled_child_run_does_not_run_its_finally(cases: ModuleType) -> None:
    # The cancellation of the task driving a run is not delivered into the
    # function: a child run `asyncio.wait_for` gives up on stays at its last
    # checkpoint, as after a crash, and its finally block does not run
    # (natively it does). The parent sees the same TimeoutError.
    cases.CLEANUPS.clear()
    assert asyncio.run(cases.parent_that_stops_waiting.__wrapped__()) == "gave up"
    assert cases.CLEANUPS == ["child's finally ran"]
    cases.CLEANUPS.clear()
    rt = resumable.Runtime("memory://")
    assert rt.run(cases.parent_that_stops_waiting, run_id="p") == "gave up"
    assert cases.CLEANUPS == []
    child = rt.get("p/1.0")
    assert child.status == "failed" and child.seq == 1  # at its checkpoint, then abandoned
    assert child.reason is not None and "went on without it" in child.reason


def test_raise_e_in_an_except_star_handler_re_raises(cases: ModuleType) -> None:
    # `raise e` of the group an except* clause matched is taken as a re-raise
    # (bare `raise`): the group keeps its structure, where CPython nests it.
    native = run_original(cases.star_raise_e).error
    compiled = run_compiled(cases.star_raise_e).error
    assert repr(native) == (
        "ExceptionGroup('', [ExceptionGroup('eg', [ValueError(1)]), "
        "ExceptionGroup('eg', [TypeError(2)])])"
    )
    assert repr(compiled) == "ExceptionGroup('eg', [ValueError(1), TypeError(2)])"


def test_a_closure_kept_outside_the_run_is_not_the_runs_after_a_resume(
    cases: ModuleType,
) -> None:
    # Natively the global callback is the function's closure: it sees `k`.
    assert run_original(cases.closure_kept_outside_the_run).value == ("after", True)
    # Compiled without a crash, it still shares the run's variables (the run
    # keeps one locals object), but the function's own `get` is a copy
    # rebuilt from the checkpoint, so identity with the global is lost.
    straight = run_compiled(cases.closure_kept_outside_the_run, crash_after_every_checkpoint=False)
    assert straight.value == ("after", False)
    # Resumed from the checkpoint (a crash, a retry), the run's variables are
    # new: the closure kept outside reads the locals of before (and in a new
    # process it would not exist: globals are not checkpointed).
    resumed = run_compiled(cases.closure_kept_outside_the_run)
    assert resumed.value == ("before", False)


def test_a_closures_annotations_are_dropped_when_a_checkpoint_cannot_hold_them(
    cases: ModuleType,
) -> None:
    assert run_original(cases.closure_annotations_that_cannot_be_stored).value == (
        ["by", "return", "xs"],
        [2],
    )
    # `list[int]` cannot be stored: the closure is rebuilt without annotations.
    assert run_compiled(cases.closure_annotations_that_cannot_be_stored).value == ([], [2])


def test_a_closures_cell_is_the_locals_object(cases: ModuleType) -> None:
    assert run_original(cases.closure_cells).value[0] == ("k",)
    assert run_compiled(cases.closure_cells).value[0] == ("L",)


def test_a_class_body_reads_the_functions_variable_before_its_namespace(
    cases: ModuleType,
) -> None:
    # CPython looks a free name of a class body up in the class namespace
    # first (which only a metaclass's __prepare__ can fill before the body runs).
    original = run_original(cases.class_body_reads_a_local_its_namespace_holds)
    assert original.value[0] == "from the namespace"
    compiled = run_compiled(cases.class_body_reads_a_local_its_namespace_holds)
    assert compiled.value[0] == "the function's"
