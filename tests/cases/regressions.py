# Minimal programs on which tests/test_property.py found the compiled function
# behaving differently from the original coroutine (or the compiler failing).
# Each stays here as a differential case once the bug is fixed.
import resumable
from resumable.testing import step

ARGS = {
    "named_handler_without_await": [((0,), {}), ((2,), {})],
    "if_else_both_return": [((0,), {}), ((1,), {})],
}


# Bug 1 (found at bede295, fixed by 1fba58f): the compiler crashed (libcst
# CSTValidationError "Must use a Name node for AsName name inside
# ExceptHandler") on a try statement without awaits, emitted unchanged, whose
# handler binds a local name.
@resumable.function
async def named_handler_without_await(a):
    try:
        c = 10 // a
    except ZeroDivisionError as e:
        c = len(e.args)
    return c + await step("s1", c)


# Bug 2 (found at f759bda): the compiler crashes (ValueError "list.remove(x): x not in list" in
# listing._merge) when both branches of a lowered if/else end in a jump: the
# unreachable `return <end>` after the first branch got no successor edge.
@resumable.function
async def if_else_both_return(a):
    if a:
        await step("s1")
        return 1
    else:
        return 2
