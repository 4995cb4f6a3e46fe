"""Generated code for each case module, compared with tests/golden/<case>.py.

The header line with the source and compiler digests is left out, so the
goldens change only when the generated code does. `pytest --update-golden`
rewrites them; review the diff.
"""

from __future__ import annotations

import os
import re

import pytest

from .conftest import GOLDEN, case_names, compiled_case

_DIGESTS = re.compile(r"^# resumable .*, source sha256:.*\n", re.M)


def normalized(text: str) -> str:
    return _DIGESTS.sub("", text, count=1)


@pytest.mark.parametrize("case", case_names())
def test_golden(case: str, request: pytest.FixtureRequest) -> None:
    generated = normalized(compiled_case(case))
    path = os.path.join(GOLDEN, case + ".py")
    if request.config.getoption("--update-golden"):
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(generated)
        return
    assert os.path.exists(path), (
        f"no golden file for {case}: run pytest --update-golden and review it"
    )
    with open(path, encoding="utf-8") as f:
        expected = f.read()
    assert generated == expected, (
        f"generated code for {case} changed; if intended, run pytest --update-golden"
    )
