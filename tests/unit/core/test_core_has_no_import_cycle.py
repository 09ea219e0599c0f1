"""No import cycle among the core's modules, checked two ways: each module
imports alone, first, with no other core module loaded (a cycle shows up as a
partly initialised module in some import order); and the import graph drawn
from the source has no cycle, counting imports placed inside functions (an
import moved into a function to dodge a cycle is still one)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import alsek_core

CORE = Path(alsek_core.__file__).parent

#: One interpreter for all modules (fast); before each module every core
#: module is dropped from sys.modules, so each one is imported first, alone.
PROBE = """
import importlib, pkgutil, sys
import alsek_core
names = [info.name for info in pkgutil.walk_packages(alsek_core.__path__, "alsek_core.")]
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m == "alsek_core" or m.startswith("alsek_core.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{name}: {type(error).__name__}: {error}")
print(len(names))
print("\\n".join(failed))
"""


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = CORE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def type_checking_nodes(tree: ast.AST) -> set[int]:
    """Imports under ``if TYPE_CHECKING:`` never run, so they make no cycle."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    return skipped


def imports_of(name: str, source: str, is_package: bool = False) -> set[str]:
    """The core modules that module ``name`` imports, wherever in its source."""
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(source)
    skipped = type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from package import module` imports that module
                submodule = f"{base}.{alias.name}"
                found.add(submodule if is_module(submodule) else base)
    return {m for m in found if m.split(".")[0] == "alsek_core" and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle's modules (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, set()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_each_core_module_imports_alone_in_a_fresh_interpreter() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    count, _, failed = out.stdout.partition("\n")
    assert int(count) > 40, "the probe found the core's modules"
    assert failed.strip() == "", f"modules that do not import alone:\n{failed}"


def test_core_import_graph_has_no_cycle() -> None:
    graph = {
        module_name(path): imports_of(module_name(path), path.read_text(), path.name == "__init__.py")
        for path in CORE.rglob("*.py")
    }
    assert graph["alsek_core.task.decorator"] >= {"alsek_core.task.base", "alsek_core.task.trigger"}
    assert cycles(graph) == []


def test_the_graph_check_counts_imports_in_functions_but_not_type_checking_ones() -> None:
    late = "def late() -> None:\n    from alsek_core import broker\n"
    assert imports_of("alsek_core.example", late) == {"alsek_core.broker"}
    relative = "from .base import Task\nfrom .. import message\n"
    assert imports_of("alsek_core.task.example", relative) == {
        "alsek_core.task.base",
        "alsek_core.message",
    }
    typing_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import alsek_core.broker\n"
    assert imports_of("alsek_core.example", typing_only) == set()
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
