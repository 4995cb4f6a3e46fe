"""try/except/else/finally with awaits in every block; return, break and
continue through finally; return/break/continue in finally swallowing the
exception; bare raise; sys.exception() in handlers and finally blocks;
explicit and implicit exception chaining; the `as` name unbound after its
handler; exceptions escaping the function; custom exception classes.

The failure sweep makes every `step` raise StepError in turn, so each await
inside a handler or finally block also checks the implicit __context__ of
an exception raised there.
"""

import sys

import resumable
from resumable.testing import step

ARGS = {
    "try_all_blocks_await": [((0,), {}), ((1,), {}), ((2,), {})],
    "nested_try": [((0,), {}), ((1,), {}), ((2,), {}), ((3,), {})],
    "handler_does_not_match": [((0,), {}), ((1,), {})],
    "return_through_finally": [((True,), {}), ((False,), {})],
    "return_in_finally_swallows": [((True,), {}), ((False,), {})],
    "custom_exception_escapes": [((1,), {}), ((2,), {})],
    "except_tuple_and_order": [((0,), {}), ((1,), {}), ((2,), {})],
}


def note(log, x):
    log.append(x)
    return x


def fail(kind, *args):
    raise kind(*args)


class AppError(Exception):
    """A custom exception with attributes beyond its args."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.details = {"code": code, "tags": [message]}


class SubError(AppError):
    pass


# Classes cannot be stored in a checkpoint: keep them in globals.
KINDS = (ValueError, KeyError, ZeroDivisionError)


# -- try / except / else / finally ---------------------------------------------------


@resumable.function
async def try_all_blocks_await(mode):
    """mode 0: no exception; 1: ValueError (handled); 2: KeyError (escapes)."""
    out = []
    try:
        out.append(await step("body", mode))
        if mode == 1:
            raise ValueError("v", await step("raise", mode))
        if mode == 2:
            raise KeyError(await step("key"))
        out.append(await step("body2"))
    except ValueError as e:
        out.append((e.args, await step("handler", len(out))))
        out.append(sys.exception() is e)
    else:
        out.append(await step("else", len(out)))
    finally:
        out.append(await step("finally", len(out)))
    out.append(await step("after"))
    return out


@resumable.function
async def nested_try(mode):
    out = []
    try:
        try:
            out.append(await step("inner", mode))
            if mode == 1:
                fail(ValueError, "inner")
            if mode == 2:
                fail(TypeError, "to outer")
        except ValueError as e:
            out.append(("inner handler", str(e), await step("ih")))
            if mode == 1:
                fail(KeyError, "from inner handler")
        else:
            out.append(await step("inner else"))
            if mode == 3:
                fail(OSError, "from else")
        finally:
            out.append(("inner finally", await step("if", len(out))))
    except (TypeError, KeyError) as e:
        out.append(("outer handler", repr(e), repr(e.__context__), await step("oh")))
    except OSError:
        out.append(("os", await step("os")))
    finally:
        out.append(("outer finally", await step("of")))
    return out


@resumable.function
async def handler_does_not_match(mode):
    out = []
    try:
        try:
            await step("body")
            fail(KeyError if mode else IndexError, "x")
        except KeyError:
            out.append(await step("key handler"))
        finally:
            out.append(await step("finally"))
    except LookupError as e:
        out.append(("outer", type(e).__name__))
    return out


@resumable.function
async def except_tuple_and_order(mode):
    try:
        await step("a", mode)
        fail(KINDS[mode], mode)
    except (KeyError, ValueError) as e:
        return "tuple", type(e).__name__, await step("h", mode)
    except ArithmeticError:
        return "base class", await step("h2", mode)
    except ZeroDivisionError:
        return "never: the earlier clause matches"


@resumable.function
async def except_bare_catches_all():
    try:
        await step("a")
        fail(LookupError, "x")
    except:  # noqa: E722
        return "bare", repr(sys.exception()), await step("h")


@resumable.function
async def except_non_exception_class_is_type_error():
    try:
        try:
            await step("a")
            fail(ValueError, "x")
        except int:
            return "never"
    except TypeError as e:
        return str(e), type(e.__context__).__name__


@resumable.function
async def exception_in_else_not_caught_by_same_try():
    try:
        try:
            await step("body")
        except ValueError:
            return "never"
        else:
            await step("else")
            fail(ValueError, "from else")
    except ValueError as e:
        return "outer", str(e)


@resumable.function
async def exception_raised_by_await_in_try():
    """With the sweep, each StepError goes to the handler (or escapes from it)."""
    out = []
    try:
        out.append(await step("a"))
        out.append(await step("b"))
    except Exception as e:
        out.append(("caught", type(e).__name__, e.args))
        out.append(await step("handler"))
    return out


# -- return / break / continue through finally ---------------------------------------------


@resumable.function
async def return_through_finally(early):
    log = []
    try:
        if early:
            return note(log, "returned"), log
        await step("body")
    finally:
        log.append(await step("finally", len(log)))
    return "end", log


@resumable.function
async def return_value_evaluated_before_finally():
    x = [1]
    try:
        return x, list(x), await step("r")
    finally:
        x.append(await step("fin"))


@resumable.function
async def return_in_handler_runs_finally():
    out = []
    try:
        await step("a")
        fail(ValueError, "x")
    except ValueError:
        return out, await step("h")
    finally:
        out.append(await step("fin"))


@resumable.function
async def break_continue_through_finally():
    out = []
    for i in range(5):
        try:
            if i == 1:
                continue
            if i == 3:
                break
            out.append(await step("body", i))
        finally:
            out.append(("fin", i, await step("fin", i)))
    else:
        out.append("else")
    return out


@resumable.function
async def break_through_two_finally_blocks():
    out = []
    while True:
        try:
            try:
                await step("body")
                break
            finally:
                out.append(await step("inner"))
        finally:
            out.append(await step("outer"))
    return out


@resumable.function
async def return_through_nested_finally_in_loop():
    out = []
    for i in range(3):
        try:
            for j in range(3):
                try:
                    if i == 1 and j == 1:
                        return out, i, j
                    out.append(await step("ij", i, j))
                finally:
                    out.append(("in", j))
        finally:
            out.append(("out", i, await step("out", i)))
    return "never"


# -- return / break / continue inside finally ---------------------------------------------


@resumable.function
async def return_in_finally_swallows(raise_it):
    try:
        await step("body")
        if raise_it:
            raise ValueError("swallowed")
        return "from body"
    finally:
        await step("finally")
        return "from finally", sys.exception()  # noqa: B012


@resumable.function
async def return_in_finally_overrides_return():
    try:
        return await step("first")
    finally:
        return "second", await step("fin")  # noqa: B012


@resumable.function
async def break_in_finally_swallows():
    out = []
    for i in range(3):
        try:
            await step("body", i)
            fail(ValueError, i)
        finally:
            out.append(await step("fin", i))
            break  # noqa: B012
    return out, sys.exception()


@resumable.function
async def continue_in_finally_swallows():
    out = []
    for i in range(3):
        try:
            out.append(await step("body", i))
            if i == 1:
                fail(KeyError, i)
        finally:
            if i == 1:
                continue  # noqa: B012
            out.append(await step("fin", i))
    return out


@resumable.function
async def exception_in_finally_replaces_pending():
    try:
        try:
            await step("a")
            fail(ValueError, "pending")
        finally:
            await step("fin")
            fail(KeyError, "replacement")
    except Exception as e:
        return repr(e), repr(e.__context__)


# -- bare raise -------------------------------------------------------------------------------


@resumable.function
async def bare_raise_after_await_in_handler():
    try:
        await step("a")
        raise AppError(7, "original")
    except AppError:
        await step("handler")
        raise


@resumable.function
async def bare_raise_caught_outside():
    try:
        try:
            await step("a")
            fail(ValueError, "x")
        except ValueError as e:
            e.extra = await step("h")
            raise
    except ValueError as e2:
        return e2.args, e2.extra, e2.__context__


@resumable.function
async def bare_raise_in_nested_handler_reraises_inner():
    try:
        await step("a")
        fail(ValueError, "outer")
    except ValueError:
        try:
            fail(KeyError, "inner")
        except KeyError:
            await step("inner handler")
            raise


@resumable.function
async def bare_raise_after_nested_handler_reraises_outer():
    try:
        await step("a")
        fail(ValueError, "outer")
    except ValueError:
        try:
            await step("b")
            fail(KeyError, "inner")
        except KeyError:
            await step("inner handler")
        await step("between")
        raise


@resumable.function
async def bare_raise_without_active_exception():
    await step("a")
    try:
        raise
    except RuntimeError:
        return str(sys.exception())


@resumable.function
async def raise_named_exception_in_its_handler():
    try:
        await step("a")
        fail(ValueError, "x")
    except ValueError as e:
        await step("h")
        raise e


# -- sys.exception() ---------------------------------------------------------------------------


@resumable.function
async def sys_exception_in_handler_and_after():
    out = [sys.exception()]
    try:
        await step("a")
        fail(ValueError, "x")
    except ValueError as e:
        out.append(sys.exception() is e)
        await step("h")
        out.append(sys.exception() is e)
    out.append(sys.exception())
    await step("after")
    out.append(sys.exception())
    return out


@resumable.function
async def sys_exception_in_nested_handlers():
    out = []
    try:
        await step("a")
        fail(ValueError, "outer")
    except ValueError as outer:
        try:
            fail(KeyError, "inner")
        except KeyError as inner:
            await step("inner")
            out.append(sys.exception() is inner)
        await step("between")
        out.append(sys.exception() is outer)
    out.append(sys.exception())
    return out


@resumable.function
async def sys_exception_in_finally_with_pending_exception():
    out = []
    try:
        try:
            await step("a")
            fail(ValueError, "pending")
        finally:
            out.append(repr(sys.exception()))
            await step("fin")
            out.append(repr(sys.exception()))
    except ValueError:
        pass
    out.append(sys.exception())
    return out


@resumable.function
async def sys_exception_in_finally_without_exception():
    out = []
    try:
        await step("a")
    finally:
        await step("fin")
        out.append(sys.exception())
    return out


@resumable.function
async def sys_exception_in_finally_inside_handler():
    out = []
    try:
        await step("a")
        fail(ValueError, "handled")
    except ValueError:
        try:
            await step("b")
        finally:
            await step("fin")
            out.append(repr(sys.exception()))
    return out


# -- explicit chaining ------------------------------------------------------------------------


@resumable.function
async def raise_from_cause():
    try:
        await step("a")
        fail(KeyError, "k")
    except KeyError as e:
        await step("h")
        raise AppError(1, "wrapped") from e


@resumable.function
async def raise_from_none():
    try:
        await step("a")
        fail(KeyError, "k")
    except KeyError:
        await step("h")
        raise AppError(2, "no context shown") from None


@resumable.function
async def raise_from_other_exception_outside_handler():
    cause = ValueError(await step("c"))
    try:
        raise TypeError("t") from cause
    except TypeError:
        e = sys.exception()
    return e.__cause__ is cause, e.__suppress_context__, e.__context__


@resumable.function
async def raise_from_exception_class():
    await step("a")
    raise AppError(3, "x") from KeyError


# -- implicit chaining ------------------------------------------------------------------------


@resumable.function
async def implicit_context_after_await_in_handler():
    try:
        await step("a")
        fail(ValueError, "first")
    except ValueError:
        await step("h")
        fail(KeyError, "second")


@resumable.function
async def implicit_context_in_nested_handlers():
    try:
        await step("a")
        fail(ValueError, "one")
    except ValueError:
        try:
            await step("b")
            fail(KeyError, "two")
        except KeyError:
            await step("c")
            fail(OSError, "three")


@resumable.function
async def implicit_context_from_finally():
    try:
        await step("a")
        fail(ValueError, "pending")
    finally:
        await step("fin")


@resumable.function
async def context_not_set_after_handler_completes():
    try:
        await step("a")
        fail(ValueError, "done")
    except ValueError:
        await step("h")
    await step("after")
    fail(KeyError, "fresh")


@resumable.function
async def step_error_in_handler_gets_context():
    """A StepError from an await in a handler has the handled exception as
    __context__ (and the sweep makes every await raise)."""
    out = []
    try:
        out.append(await step("a"))
        fail(AppError, 5, "handled")
    except AppError as e:
        out.append(e.code)
        out.append(await step("h1"))
        out.append(await step("h2"))
    return out


@resumable.function
async def exception_cycle_avoided():
    try:
        try:
            await step("a")
            fail(ValueError, "a")
        except ValueError as a:
            try:
                fail(KeyError, "b")
            except KeyError as b:
                await step("h")
                raise a
    except ValueError as e:
        return repr(e.__context__), repr(e.__context__.__context__)


# -- the `as` name --------------------------------------------------------------------------


@resumable.function
async def as_name_unbound_after_handler():
    try:
        await step("a")
        fail(ValueError, "x")
    except ValueError as e:
        saved = e
        await step("h")
    try:
        return e  # noqa: F821
    except UnboundLocalError:
        return "unbound", str(sys.exception()), repr(saved)


@resumable.function
async def as_name_shadows_existing_local():
    e = "before"
    try:
        await step("a")
        fail(ValueError, "x")
    except ValueError as e:  # noqa: F841
        await step("h")
    try:
        return e
    except UnboundLocalError:
        return "unbound"


@resumable.function
async def as_name_unbound_when_handler_raises():
    try:
        try:
            await step("a")
            fail(ValueError, "x")
        except ValueError as e:  # noqa: F841
            await step("h")
            fail(KeyError, "from handler")
    except KeyError:
        pass
    try:
        return e  # noqa: F821
    except UnboundLocalError:
        return "unbound"


@resumable.function
async def as_name_kept_when_handler_not_run():
    e = "kept"
    try:
        await step("a")
    except ValueError as e:  # noqa: F841
        await step("never")
    return e


# -- exceptions escaping the function; custom classes -------------------------------------------


@resumable.function
async def custom_exception_escapes(code):
    await step("a", code)
    if code == 1:
        raise AppError(code, "app")
    raise SubError(code, await step("msg"))


@resumable.function
async def custom_exception_attributes_survive_checkpoint():
    err = AppError(9, "stored")
    err.note = await step("n")
    await step("b")
    try:
        raise err
    except AppError:
        e = sys.exception()
    return e is err, e.code, e.details, e.note, e.args


@resumable.function
async def builtin_exception_from_expression_escapes():
    d = {}
    await step("a")
    return d[await step("k")]


@resumable.function
async def exception_stored_and_raised_later():
    try:
        await step("a")
        fail(ValueError, "stored")
    except ValueError as e:
        saved = e
    await step("b")
    raise saved


# -- leaving a handler by break / continue / return unbinds the `as` name ---------------------


@resumable.function
async def as_name_unbound_after_continue_in_handler():
    out = []
    for i in range(2):
        try:
            await step("a", i)
            fail(ValueError, i)
        except ValueError as e:
            out.append(await step("h", i))
            continue
    try:
        out.append(e)  # noqa: F821
    except UnboundLocalError:
        out.append("unbound")
    return out


@resumable.function
async def as_name_unbound_after_break_in_handler():
    while True:
        try:
            await step("a")
            fail(KeyError, "k")
        except KeyError as e:
            await step("h")
            break
    try:
        return e  # noqa: F821
    except UnboundLocalError:
        return "unbound"


# -- awaits in the except clause's type expression ---------------------------------------------


async def exception_class(name):
    """Not resumable: awaits, then returns a builtin exception class."""
    await step("class", name)
    return {"ValueError": ValueError, "KeyError": KeyError}[name]


@resumable.function
async def await_in_except_type_expression():
    try:
        await step("a")
        fail(ValueError, "x")
    except await exception_class("KeyError"):
        return "never"
    except await exception_class("ValueError") as e:
        return "matched", e.args, await step("h")


@resumable.function
async def except_type_expressions_not_evaluated_after_match():
    try:
        await step("a")
        fail(KeyError, "x")
    except KeyError:
        return "first clause"
    except await exception_class("ValueError"):
        return "never"


# -- variables assigned in a try body, read in its handler ---------------------------------------


@resumable.function
async def variable_assigned_in_try_read_in_handler():
    """Every value of `stage` must be in the checkpoint of every await of the
    try body (the sweep raises at each one)."""
    stage = 0
    try:
        stage = 1
        await step("one")
        stage = 2
        await step("two")
        stage = 3
        fail(ValueError, "end")
    except Exception:
        return stage, type(sys.exception()).__name__


@resumable.function
async def variable_assigned_in_try_read_in_finally():
    stage = "start"
    try:
        stage = "one"
        await step("one")
        stage = "two"
        await step("two")
    finally:
        result = stage
    return result


# -- sys.exception() inside an awaited helper ------------------------------------------------------


async def probe(label):
    """Not resumable: what sys.exception() is inside an awaited coroutine."""
    before = repr(sys.exception())
    await step(label)
    return before, repr(sys.exception())


@resumable.function
async def sys_exception_seen_by_awaited_helper():
    out = [await probe("outside")]
    try:
        await step("a")
        fail(ValueError, "handled")
    except ValueError:
        out.append(await probe("in handler"))
        try:
            fail(KeyError, "inner")
        except KeyError:
            out.append(await probe("in inner handler"))
        out.append(await probe("back in handler"))
    try:
        try:
            fail(OSError, "pending")
        finally:
            out.append(await probe("in finally"))
    except OSError:
        pass
    out.append(await probe("after"))
    return out


@resumable.function
async def sys_exception_in_else_inside_handler():
    out = []
    try:
        await step("a")
        fail(ValueError, "outer")
    except ValueError:
        try:
            await step("b")
        except KeyError:
            out.append("never")
        else:
            await step("else")
            out.append(repr(sys.exception()))
    return out


@resumable.function
async def exception_in_finally_after_return():
    try:
        try:
            return await step("r")
        finally:
            await step("fin")
            fail(KeyError, "replaces the return")
    except KeyError as e:
        return "caught", e.args, e.__context__


# -- exceptions stored in a checkpoint keep what their constructor set -----------------------------


@resumable.function
async def handled_exception_attributes_after_await_in_handler():
    try:
        await step("a")
        b"\xff".decode()
    except UnicodeDecodeError as e:
        await step("h")
        return e.encoding, e.start, e.end, e.reason


@resumable.function
async def builtin_exception_attributes_survive_checkpoint():
    errors = [
        StopIteration(5),
        SystemExit(3),
        ImportError("msg", name="mod", path="/p"),
        OSError(2, "No such file", "f.txt"),
        AttributeError("a", name="attr", obj=None),
        NameError("n", name="nm"),
    ]
    await step("a")
    return [
        errors[0].value,
        errors[1].code,
        (errors[2].name, errors[2].path),
        (type(errors[3]).__name__, errors[3].errno, errors[3].strerror, errors[3].filename),
        errors[4].name,
        errors[5].name,
    ]


@resumable.function
async def exception_args_share_objects_with_locals():
    lst = [1]
    err = ValueError(lst)
    try:
        fail(KeyError, "first")
    except KeyError:
        saved = sys.exception()
        try:
            raise err
        except ValueError:
            pass
    await step("a")
    lst.append(2)
    return err.args, err.args[0] is lst, err.__context__ is saved


# -- loops and try statements inside finally blocks ------------------------------------------------


@resumable.function
async def loop_with_break_inside_finally_keeps_pending_exception():
    out = []
    try:
        try:
            await step("a")
            fail(ValueError, "pending")
        finally:
            for i in range(3):
                out.append(await step("f", i))
                if i == 1:
                    break
                continue
    except ValueError:
        out.append(("propagated", repr(sys.exception())))
    return out


@resumable.function
async def try_inside_finally_with_pending_exception():
    out = []
    try:
        try:
            await step("a")
            fail(ValueError, "pending")
        finally:
            try:
                await step("inner")
                fail(KeyError, "inner")
            except KeyError as e:
                out.append((repr(e.__context__), repr(sys.exception())))
                await step("inner handler")
            out.append(repr(sys.exception()))
    except ValueError:
        out.append("pending propagated")
    return out


@resumable.function
async def return_from_loop_inside_finally_swallows():
    try:
        await step("a")
        fail(ValueError, "swallowed")
    finally:
        for i in range(3):
            if await step("f", i) % 2:
                return "returned", i  # noqa: B012
    return "never"
