"""What each figure script of `bench/all.py` hands back: its rows, its
targets (each a ratio against a baseline measured in the same run) and the
series the plots draw.

A figure script takes `--json PATH` (and `--quick`); with it, it writes one
`Figure` there as JSON (`write`). `bench/all.py` runs each script in a
process of its own and reads the files back (`read`).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class Target:
    """One target of the issue: `value` (a ratio) against `limit`.

    `value` None means not measured (a service or a package missing): such a
    target is never met; `note` says why."""

    name: str
    value: float | None
    limit: float
    #: "at most" (value <= limit) or "at least" (value >= limit).
    sense: str
    #: What the ratio is made of, with units ("durable 10.3 µs / floor 1.4 µs").
    detail: str = ""
    #: Half the interquartile range of the rounds' ratios, over the median.
    spread: float | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        """True or False; None when not measured."""
        if self.value is None:
            return None
        return self.value <= self.limit if self.sense == "at most" else self.value >= self.limit


@dataclasses.dataclass
class Figure:
    name: str
    #: Table rows: {"what": ..., "value": number, "unit": ..., "spread": ...}.
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    targets: list[Target] = dataclasses.field(default_factory=list)
    #: Plots, each written to docs/performance-<key>.png: key -> {"title": ...,
    #: "xlabel": ..., "ylabel": ..., "log_x": bool, "lines": {label: {"x": [...],
    #: "y": [...]}}}.
    series: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: What the figure ran on (versions, store, sizes), free text.
    setup: str = ""

    def row(self, what: str, value: float | None, unit: str, spread: float | None = None) -> None:
        self.rows.append({"what": what, "value": value, "unit": unit, "spread": spread})


def median_and_spread(values: Sequence[float]) -> tuple[float, float]:
    """The median, and half the interquartile range over the median."""
    middle = statistics.median(values)
    if len(values) < 4 or middle == 0:
        return middle, 0.0
    q1, _, q3 = statistics.quantiles(values, n=4)
    return middle, (q3 - q1) / 2 / abs(middle)


def write(figure: Figure, path: str | None) -> None:
    if path:
        Path(path).write_text(json.dumps(dataclasses.asdict(figure), indent=1))


def read(path: Path) -> Figure:
    raw = json.loads(path.read_text())
    targets = [Target(**t) for t in raw.pop("targets")]
    return Figure(targets=targets, **raw)
