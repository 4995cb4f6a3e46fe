"""A wheel built from the repository, installed alone into a fresh venv
(its dependencies from the package index, no extras): `import resumable`
works without the compiler, the committed checkout example runs with its
committed generated module, crashes and resumes, and `resumable compile`
names the extra to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env = {k: v for k, v in env.items() if not k.startswith("RESUMABLE_")}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_wheel_alone_runs_the_committed_example(tmp_path: Path) -> None:
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
        "-w", tmp_path / "dist", ROOT, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("resumable-*.whl")
    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    py = venv / "bin" / "python"
    installed = _run(py, "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    # No compiler: libcst and jinja2 are not there, and importing resumable does not need them.
    probe = _run(
        py, "-c",
        "import importlib.util as u, resumable; "
        "print(resumable.__file__); print(u.find_spec('libcst'), u.find_spec('jinja2'))",
        cwd=tmp_path,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    where, missing = probe.stdout.splitlines()
    assert str(venv) in where and missing == "None None"

    # The committed example and its committed generated module, as shipped.
    app = tmp_path / "app"
    (app / "__resumable__").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "checkout.py", app)
    shutil.copy(ROOT / "examples" / "__resumable__" / "checkout.py", app / "__resumable__")
    crashed = _run(py, "checkout.py", "--crash-after-charge", cwd=app)
    assert crashed.returncode == -9, crashed.stderr  # SIGKILLed after the charge
    assert crashed.stdout.count("charging the card") == 1
    resumed = _run(py, "checkout.py", cwd=app)
    assert resumed.returncode == 0, resumed.stderr
    assert "charging the card" not in resumed.stdout  # charged once, before the crash
    assert "order order-456 completed" in resumed.stdout

    compiled = _run(venv / "bin" / "resumable", "compile", ".", cwd=app)
    assert compiled.returncode == 2
    assert "pip install 'resumable[compiler]'" in compiled.stderr
