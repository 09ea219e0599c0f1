"""Finding the tasks a pool should run: TARGET is a module file, a dotted
module path, or a directory scanned recursively; every Task object at the top
level of the modules found is taken.

Files are imported under their package's dotted name (the package root goes
on sys.path, as does the working directory), so imports inside the user's
project work as they do anywhere else.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from alsek_core.errors import AlsekError
from alsek_core.task import Task

#: Never imported by a directory scan: they run code when imported.
SKIPPED_FILES = {"__main__.py", "setup.py", "conftest.py"}
SKIPPED_DIRS = {"__pycache__", "node_modules", "site-packages", "build", "dist"}


class TargetError(AlsekError):
    """TARGET names nothing importable, or nothing with tasks in it."""


def _module_name(path: Path) -> tuple[Path, str]:
    """(the folder to put on sys.path, the dotted name of ``path``)."""
    path = path.resolve()
    parts = [] if path.name == "__init__.py" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)


def _import(name: str, shown: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise TargetError(f"cannot find {shown!r}: not a file, a directory or an importable module") from exc
        raise TargetError(f"importing {shown!r} failed: {exc}") from exc
    except Exception as exc:
        raise TargetError(f"importing {shown!r} failed: {type(exc).__name__}: {exc}") from exc


def _import_file(path: Path) -> ModuleType:
    root, name = _module_name(path)
    if not name:
        raise TargetError(f"cannot import {str(path)!r}: it has no module name")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return _import(name, str(path))


def _python_files(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        relative = path.relative_to(folder).parts
        if path.name in SKIPPED_FILES or any(
            part.startswith(".") or part in SKIPPED_DIRS for part in relative[:-1]
        ):
            continue
        if any((folder.joinpath(*relative[:i]) / "pyvenv.cfg").exists() for i in range(len(relative))):
            continue
        found.append(path)
    return found


def modules_of(target: str) -> list[ModuleType]:
    cwd = str(Path.cwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    path = Path(target)
    if path.is_dir():
        return [_import_file(file) for file in _python_files(path)]
    if path.is_file() or target.endswith(".py"):
        if not path.is_file():
            raise TargetError(f"cannot find {target!r}: no such file")
        return [_import_file(path)]
    return [_import(target, target)]


def find_tasks(target: str) -> list[Task]:
    """Every distinct Task defined at the top level of TARGET's modules."""
    tasks: dict[int, Task] = {}
    for module in modules_of(target):
        for value in vars(module).values():
            if isinstance(value, Task):
                tasks.setdefault(id(value), value)
    if not tasks:
        raise TargetError(f"no tasks found in {target!r} (looked for Task objects at module level)")
    return list(tasks.values())
