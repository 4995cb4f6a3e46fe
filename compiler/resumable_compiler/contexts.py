"""Lowering of `with` statements that contain awaits.

Today only the first item's expression may await (analyze rejects the
rest): the statement then runs unchanged with that value lowered.
"""

from __future__ import annotations

import libcst as cst

from .branches import replace_first
from .builder import Lowering

__all__ = ["lower_with"]


def lower_with(b: Lowering, node: cst.With) -> None:
    replace_first(b, node, b.value(node.items[0].item), "items")
