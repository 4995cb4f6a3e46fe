"""A generated module carries the sha256 of its own text in its header: one
edited by hand is out of date for `resumable compile --check`, is written
again by `resumable compile`, and is never run (StaleCodeError). A module
written before the seal existed still loads."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from tests.procs import clean_env, python, resumable_cmd

SHOP = """
import resumable


async def step(x):
    return x + 1


@resumable.function
async def flow(x):
    return (await step(x)) * 5
"""

RUN = """
import resumable, shop
try:
    print(resumable.Runtime("memory://").run(shop.flow, 1))
except Exception as e:
    print(type(e).__name__, e)
"""


def test_a_generated_module_edited_by_hand_is_stale_and_never_run(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(textwrap.dedent(SHOP))
    env = clean_env()
    assert resumable_cmd("compile", ".", cwd=tmp_path, env=env).returncode == 0
    generated = tmp_path / "__resumable__" / "shop.py"
    assert python(RUN, cwd=tmp_path, env=env).stdout == "10\n"
    text = generated.read_text()
    assert re.search(r"^# resumable .*, output sha256:[0-9a-f]{64}$", text, re.M)
    generated.write_text(text.replace("* 5", "* 6"))
    checked = resumable_cmd("compile", "--check", ".", cwd=tmp_path, env=env)
    assert checked.returncode == 1 and "shop.py: stale" in checked.stdout
    ran = python(RUN, cwd=tmp_path, env=env).stdout
    assert ran.startswith("StaleCodeError") and "was edited by hand" in ran
    assert resumable_cmd("compile", ".", cwd=tmp_path, env=env).returncode == 0
    assert generated.read_text() == text  # written again
    assert python(RUN, cwd=tmp_path, env=env).stdout == "10\n"


def test_a_module_written_before_the_seal_still_loads(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(textwrap.dedent(SHOP))
    env = clean_env()
    assert resumable_cmd("compile", ".", cwd=tmp_path, env=env).returncode == 0
    generated = tmp_path / "__resumable__" / "shop.py"
    generated.write_text(re.sub(r", output sha256:[0-9a-f]{64}", "", generated.read_text()))
    assert python(RUN, cwd=tmp_path, env=env).stdout == "10\n"
