"""Module-level classes of every user kind the codec stores.

Each class that must not be constructed on decode counts the calls of its
`__init__` / `__post_init__` / `__new__` / validators / overridden methods in
`CALLS` (a Counter keyed by "Class.method"); tests reset it with
`CALLS.clear()` after building their values."""

from __future__ import annotations

import collections
import dataclasses
import enum
from typing import Any, NamedTuple

import pydantic

import resumable
from resumable.codec import register_codec

CALLS: collections.Counter[str] = collections.Counter()


# -- enums ------------------------------------------------------------------------


class Color(enum.Enum):
    RED = 1
    GREEN = "green"
    BLUE = (3, "b")
    CRIMSON = 1  # an alias of RED: decodes to the same singleton


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    READ = "r"
    WRITE = "w"


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


class Bits(enum.IntFlag):
    A = 1
    B = 2


# -- dataclasses ----------------------------------------------------------------


@dataclasses.dataclass
class Point:
    x: Any
    y: Any = 0

    def __post_init__(self) -> None:
        CALLS["Point.__post_init__"] += 1


@dataclasses.dataclass(frozen=True)
class Frozen:
    name: str
    tags: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        CALLS["Frozen.__post_init__"] += 1


@dataclasses.dataclass(slots=True)
class Slotted:
    a: Any
    b: Any = None


@dataclasses.dataclass(init=False)
class CustomInit:
    """A dataclass with a hand-written __init__ that must not run on decode."""

    value: Any

    def __init__(self, value: Any) -> None:
        CALLS["CustomInit.__init__"] += 1
        self.value = value


@dataclasses.dataclass(eq=False)
class Node:
    """A linked node (identity matters; eq=False compares by identity)."""

    value: Any
    next: Node | None = None


# -- named tuples -----------------------------------------------------------------

Pair = collections.namedtuple("Pair", "left right")


class Coord(NamedTuple):
    lat: float
    lon: float = 0.0


class Guarded(collections.namedtuple("Guarded", "a b")):
    """A named tuple whose __new__ is overridden (must not run on decode)."""

    __slots__ = ()

    def __new__(cls, a: Any, b: Any) -> Guarded:
        CALLS["Guarded.__new__"] += 1
        return super().__new__(cls, a, b)


# -- exceptions ---------------------------------------------------------------------


class AppError(Exception):
    """__init__ signature differs from args and counts calls."""

    def __init__(self, message: str, code: int) -> None:
        CALLS["AppError.__init__"] += 1
        super().__init__(message)
        self.code = code


class PlainError(Exception):
    pass


class NewError(Exception):
    """Overrides __new__ (must not run on decode)."""

    def __new__(cls, *args: Any) -> NewError:
        CALLS["NewError.__new__"] += 1
        return super().__new__(cls, *args)


class WatchedError(Exception):
    """Overrides __setattr__ (must not run on decode)."""

    def __setattr__(self, name: str, value: Any) -> None:
        CALLS["WatchedError.__setattr__"] += 1
        super().__setattr__(name, value)


# -- pydantic ------------------------------------------------------------------------


class Address(pydantic.BaseModel):
    street: str
    zip_code: str = "00000"

    @pydantic.field_validator("street")
    @classmethod
    def _street(cls, v: str) -> str:
        CALLS["Address.field_validator"] += 1
        return v.strip()

    @pydantic.model_validator(mode="after")
    def _after(self) -> Address:
        CALLS["Address.model_validator"] += 1
        return self


class Customer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    name: str
    address: Address | None = None
    tags: list[Any] = pydantic.Field(default_factory=list)
    _secret: Any = pydantic.PrivateAttr(default=None)

    @pydantic.field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        CALLS["Customer.field_validator"] += 1
        return v.title()


class Counted(pydantic.BaseModel):
    """model_post_init must not run on decode (it would bump `n`)."""

    n: int = 0

    def model_post_init(self, context: Any) -> None:
        CALLS["Counted.model_post_init"] += 1
        self.n += 1


class FrozenModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True)

    key: str
    value: Any = None


# -- subclasses of built-in types ------------------------------------------------------


class Tag(str):
    def __new__(cls, value: str) -> Tag:
        CALLS["Tag.__new__"] += 1
        return super().__new__(cls, value.upper())

    def __str__(self) -> str:
        CALLS["Tag.__str__"] += 1
        return "overridden"


class Cents(int):
    def __new__(cls, value: int) -> Cents:
        CALLS["Cents.__new__"] += 1
        return super().__new__(cls, value * 100)

    def __int__(self) -> int:
        CALLS["Cents.__int__"] += 1
        return -1


class Registry(dict[Any, Any]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        CALLS["Registry.__init__"] += 1
        super().__init__(*args, **kwargs)

    def __setitem__(self, key: Any, value: Any) -> None:
        CALLS["Registry.__setitem__"] += 1
        super().__setitem__(key, value)

    def items(self) -> Any:
        CALLS["Registry.items"] += 1
        return super().items()


class Bag(list[Any]):
    def __init__(self, *args: Any) -> None:
        CALLS["Bag.__init__"] += 1
        super().__init__(*args)

    def append(self, item: Any) -> None:
        CALLS["Bag.append"] += 1
        super().append(item)

    def extend(self, items: Any) -> None:
        CALLS["Bag.extend"] += 1
        super().extend(items)

    def __iter__(self) -> Any:
        CALLS["Bag.__iter__"] += 1
        return super().__iter__()


class Ratio(float):
    pass


class Blob(bytes):
    pass


class TagSet(set[Any]):
    def add(self, item: Any) -> None:
        CALLS["TagSet.add"] += 1
        super().add(item)


class FrozenTags(frozenset[Any]):
    pass


class Row(tuple[Any, ...]):
    pass


class Ordered(collections.OrderedDict[Any, Any]):
    pass


class Counts(collections.defaultdict[Any, Any]):
    pass


@dataclasses.dataclass
class Default:
    """A callable dataclass: storable as an instance, refused as a defaultdict's factory."""

    value: Any = 0

    def __call__(self) -> Any:
        CALLS["Default.__call__"] += 1
        return self.value


# -- a registered codec -----------------------------------------------------------------


class Money:
    """Not storable by itself: registered below under a stable name."""

    def __init__(self, amount: int, currency: str) -> None:
        self.amount = amount
        self.currency = currency

    def __eq__(self, other: object) -> bool:
        return type(other) is Money and (self.amount, self.currency) == (
            other.amount,
            other.currency,
        )

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def __repr__(self) -> str:
        return f"Money({self.amount!r}, {self.currency!r})"


register_codec(
    Money,
    lambda m: [m.amount, m.currency],
    lambda v: Money(*v),
    name="codec_types:Money",
    aliases=("old.billing:Money",),
)


# -- values that cannot be stored -------------------------------------------------------


class Lock:
    """An unregistered plain class."""

    def __init__(self) -> None:
        self.owner = "nobody"


class Canary:
    """Decoding must never create one."""

    created = 0

    def __new__(cls, *args: Any, **kwargs: Any) -> Canary:
        Canary.created += 1
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Canary.created += 1


def helper(x: Any) -> Any:
    """A module-level function (stored by name)."""
    return x


@resumable.function
async def fetch(key: str) -> str:
    """A decorated function (stored by its function id)."""
    return key


# -- bound methods ----------------------------------------------------------------


@dataclasses.dataclass
class Account:
    """A dataclass with methods: its bound methods are stored as the object and
    the method's name."""

    balance: int = 0

    def deposit(self, amount: int) -> int:
        return self.balance + amount

    def __audit(self) -> int:  # private: found under its mangled name _Account__audit
        return self.balance

    def audit(self) -> Any:
        return self.__audit

    @classmethod
    def opened(cls, balance: int) -> Account:
        return cls(balance)

    @resumable.function
    async def settle(self, amount: int) -> int:
        return self.balance - amount


@dataclasses.dataclass
class Savings(Account):
    def deposit(self, amount: int) -> int:
        return 2 * amount
