"""How the CLI finds a pool's tasks: a module file, a dotted path, or a
directory scanned recursively; and what it says when it finds nothing."""

from __future__ import annotations

import sys
import uuid as uuid_lib
from collections.abc import Iterator
from pathlib import Path

import pytest

from alsek_cli.targets import TargetError, find_tasks

TASKS = """
from alsek_core.broker import Broker
from tests.five_method import DictBackend
from alsek_core.task import task

broker = Broker(DictBackend())

@task(broker, name="{name}")
def {name}():
    return 1
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A package with tasks at two depths, a plain script, and a module without tasks,
    under a name no other test uses; the working directory is its parent."""
    name = f"proj_{uuid_lib.uuid4().hex[:8]}"
    package = tmp_path / name
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "tasks.py").write_text(TASKS.format(name="top"))
    (package / "sub" / "more.py").write_text(TASKS.format(name="deep"))
    (package / "helpers.py").write_text("VALUE = 1\n")
    (package / "__main__.py").write_text("raise SystemExit('never imported')\n")
    (package / ".hidden").mkdir()
    (package / ".hidden" / "x.py").write_text("raise SystemExit('never imported')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path, name
    for module in set(sys.modules) - before:
        del sys.modules[module]


def _names(target: str) -> list[str]:
    return sorted(t.name for t in find_tasks(target))


def test_a_dotted_module_path(project: tuple[Path, str]) -> None:
    _, name = project
    assert _names(f"{name}.tasks") == ["top"]
    assert _names(f"{name}.sub.more") == ["deep"]


def test_a_module_file_is_imported_under_its_package_name(project: tuple[Path, str]) -> None:
    root, name = project
    (task,) = find_tasks(str(root / name / "sub" / "more.py"))
    assert task.function.__module__ == f"{name}.sub.more"


def test_a_directory_is_scanned_recursively(project: tuple[Path, str]) -> None:
    _, name = project
    assert _names(name) == ["deep", "top"]


def test_a_plain_script_outside_any_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"script_{uuid_lib.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(TASKS.format(name="alone"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        assert _names(str(tmp_path / f"{name}.py")) == ["alone"]
    finally:
        sys.modules.pop(name, None)


def test_errors_say_what_went_wrong(project: tuple[Path, str]) -> None:
    root, name = project
    with pytest.raises(TargetError, match="cannot find 'nowhere': not a file, a directory or an importable module"):
        find_tasks("nowhere")
    with pytest.raises(TargetError, match="no such file"):
        find_tasks("missing.py")
    with pytest.raises(TargetError, match=rf"no tasks found in '{name}.helpers'"):
        find_tasks(f"{name}.helpers")
    (root / name / "broken.py").write_text("import not_installed_anywhere\n")
    missing = "No module named 'not_installed_anywhere'"
    with pytest.raises(TargetError, match=rf"importing '{name}.broken' failed: {missing}"):
        find_tasks(f"{name}.broken")
    (root / name / "crashes.py").write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(TargetError, match="RuntimeError: boom at import"):
        find_tasks(f"{name}.crashes")
