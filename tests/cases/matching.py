"""`match` statements with awaits in the subject, the guards and the case
bodies, for every kind of pattern. The subject is evaluated once; captures
are bound before the guard and stay bound when it fails.
"""

import dataclasses
import enum

import resumable
from resumable.testing import step

ARGS = {
    "handle_event": [((i,), {}) for i in range(7)],
    "irrefutable_case_with_awaiting_guard": [((0,), {}), ((1,), {}), ((2,), {})],
    "subject_evaluated_once": [((0,), {}), ((1,), {}), ((2,), {})],
    "no_case_matches": [((0,), {}), ((9,), {})],
    "nested_match": [(((1, 2),), {}), (((1, "a"),), {}), (((3, 4),), {}), ((5,), {})],
}


def note(log, x):
    log.append(x)
    return x


class Kind(enum.Enum):
    CREATED = "created"
    DELETED = "deleted"


@dataclasses.dataclass
class Event:
    kind: Kind
    payload: dict


EVENTS = [
    Event(Kind.CREATED, {"id": 1, "tags": ["a", "b"]}),
    Event(Kind.CREATED, {"id": 2}),
    Event(Kind.DELETED, {"id": 3, "reason": "spam"}),
    Event(Kind.DELETED, {"id": 4}),
    ("ping", 5),
    [1, 2, 3, 4],
    "unknown",
]


@resumable.function
async def handle_event(i):
    match EVENTS[i]:
        case Event(kind=Kind.CREATED, payload={"id": ident, "tags": [first, *others]}):
            return "created with tags", ident, first, others, await step("tags", ident)
        case Event(Kind.CREATED, {"id": ident} as payload) if await step("g", ident) % 2:
            return "created", ident, payload
        case Event(kind=Kind.DELETED, payload={"id": ident, **rest}) if rest:
            return "deleted", ident, rest, await step("why", ident)
        case Event(kind=Kind.DELETED | Kind.CREATED) as e:
            return "other event", e.payload["id"], await step("other")
        case ("ping", int(n)) | ("pong", int(n)):
            return "ping", await step("ping", n)
        case [1, *middle, 4] if len(middle) == await step("len") % 3 + 2:
            return "sequence", middle
        case str() as s if await step("s", len(s)) > 1000:
            return "never"
        case _:
            return "fell through", ident, payload, first, others, rest, n, middle, s


@resumable.function
async def irrefutable_case_with_awaiting_guard(a):
    match a:
        case x if await step("g", x) % 2 == 0:
            r = "even", x
        case 1:
            r = "one"
        case y:
            r = "other", y, x
    return r


@resumable.function
async def subject_evaluated_once(a):
    calls = []
    match note(calls, a):
        case 0 if await step("g0") % 2 == 5:
            r = "never"
        case 1 if await step("g1") >= 0:
            r = "one"
        case _:
            r = "other"
    return r, calls


@resumable.function
async def no_case_matches(a):
    r = "none"
    match a:
        case 0:
            r = await step("zero")
        case 1 if await step("g"):
            r = "one"
    return r


@resumable.function
async def nested_match(a):
    match a:
        case (x, y):
            match y:
                case int() if await step("inner", x, y) % 2:
                    return "odd", x + y
                case int():
                    return "even", await step("even", x)
                case _:
                    return "not int", y
        case _:
            return "scalar", await step("scalar", a)


@resumable.function
async def match_in_a_loop_with_break_and_continue():
    out = []
    for item in [1, "skip", 2, None, 3, "stop", 4]:
        match item:
            case "skip":
                continue
            case "stop":
                break
            case None:
                out.append(await step("none"))
            case int(n) if n % 2 and await step("odd", n) % 2:
                out.append(n)
            case int(n):
                out.append(-n)
    return out
