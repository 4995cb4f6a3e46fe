"""The project's roots (resumable/roots.py): the working directory and the
folders of `[tool.resumable] roots`, never Python's installation, an
installed package or resumable itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import resumable
from resumable import ResumableError
from resumable.roots import in_project, project_roots

ROOT = Path(__file__).resolve().parents[1]


def test_the_working_directory_and_the_listed_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "src" / "shop").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (project / "pyproject.toml").write_text(
        '[tool.resumable]\nroots = ["src", "../shared", "src"]\n'
    )
    monkeypatch.chdir(project)
    real = os.path.realpath
    assert project_roots() == (real(project), real(project / "src"), real(tmp_path / "shared"))
    assert in_project(str(project / "src" / "shop" / "orders.py"))
    assert in_project("src/shop/orders.py")  # relative to the working directory
    assert in_project(str(tmp_path / "shared" / "util.py"))
    assert not in_project(str(tmp_path / "elsewhere.py"))
    assert not in_project(str(project) + "-old/x.py")  # a prefix of the name is not a folder


def test_roots_are_per_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assert in_project(str(tmp_path / "a" / "m.py")) and not in_project(str(tmp_path / "b" / "m.py"))
    monkeypatch.chdir(tmp_path / "b")
    assert in_project(str(tmp_path / "b" / "m.py")) and not in_project(str(tmp_path / "a" / "m.py"))


def test_slash_is_never_a_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    assert project_roots() == ()
    assert not in_project("/etc/passwd") and not in_project(__file__)


def test_real_paths_decide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (project / "link").symlink_to(outside)
    (outside / "into").symlink_to(project)
    monkeypatch.chdir(project)
    assert not in_project(str(project / "link" / "m.py"))  # leads outside
    assert in_project(str(outside / "into" / "m.py"))  # leads inside


def test_python_installed_packages_and_resumable_are_never_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for site in ("site-packages", "dist-packages"):
        (tmp_path / "venv" / site / "pkg").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert not in_project(str(tmp_path / "venv" / "site-packages" / "pkg" / "m.py"))
    assert not in_project(str(tmp_path / "venv" / "dist-packages" / "pkg" / "m.py"))
    monkeypatch.chdir(os.path.dirname(os.__file__))  # the standard library as the project
    assert not in_project(os.__file__)
    stdlib = os.path.dirname(os.__file__)
    monkeypatch.chdir(os.path.dirname(stdlib))  # a folder above the standard library
    assert not in_project(os.path.join(stdlib, "m.py"))
    monkeypatch.chdir(ROOT)  # the repository: its tests are the project, resumable is not
    assert in_project(__file__)
    assert not in_project(resumable.__file__)


@pytest.mark.parametrize("roots", ['"src"', "[1]", '{a = "b"}'])
def test_roots_must_be_a_list_of_folders(
    roots: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.resumable]\nroots = {roots}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ResumableError, match=r"roots must be a list of folders"):
        project_roots()


def test_a_broken_pyproject_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.resumable\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ResumableError, match="cannot read the configuration in"):
        project_roots()
