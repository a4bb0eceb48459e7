"""The package's architecture, checked: which subpackage may import which, no cycle, small modules and classes.

Each subpackage's docstring says what it may import; the table below is the same rule in code. Every import
counts, including those inside functions and under ``TYPE_CHECKING``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "dags" / "script_runner"

# room -> the rooms it may import (besides itself). Top-level modules are rooms of their own.
ALLOWED: dict[str, set[str]] = {
    "exceptions": set(),
    "config": {"exceptions"},
    "discover": {"config", "exceptions"},
    "run": {"config", "discover", "exceptions"},
    "report": {"config", "discover", "run", "exceptions"},
    "upload": {"config", "discover", "exceptions"},
    "deploy": {"config", "exceptions"},
    "cli": {"config", "discover", "report", "deploy", "exceptions"},
    "tasks": {"config", "discover", "run", "report", "upload", "exceptions"},
    "dag": {"config", "discover", "run", "upload", "tasks", "exceptions"},
    "__init__": set(),
}
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250


def _modules() -> dict[str, Path]:
    """Dotted name under ``script_runner`` -> file, for every module of the package."""
    out: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, known: set[str]) -> set[str]:
    """The package modules a file imports (``from script_runner.x import y`` counts y when it is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("script_runner."):
                short = name.removeprefix("script_runner.")
                if short in known:
                    found.add(short)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    graph = {}
    for name, path in mods.items():
        deps = _imports(path, known)
        # a module importing its own subpackage's __init__ for a sibling is not an edge to itself
        graph[name] = {d for d in deps if d != name and not name.startswith(d + ".")}
    return graph


def _room(module: str) -> str:
    return module.split(".")[0]


def test_layout_every_subpackage_says_what_it_owns_and_may_import() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "Owns" in doc, f"{init}: docstring must say what the subpackage owns"
        assert "May import" in doc, f"{init}: docstring must say what the subpackage may import"


def test_layout_imports_follow_the_rooms_rule() -> None:
    wrong = [
        f"{mod} imports {dep}"
        for mod, deps in _graph().items()
        for dep in sorted(deps)
        if _room(dep) != _room(mod) and _room(dep) not in ALLOWED[_room(mod)]
    ]
    assert wrong == []


def test_layout_has_no_import_cycle() -> None:
    # Within a room too: two modules that import each other are one module in two files.
    graphlib.TopologicalSorter(_graph()).prepare()  # raises CycleError naming the cycle


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layout_module_and_class_sizes(path: Path) -> None:
    lines = path.read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.name}: {lines} lines (split it by job)"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            assert size <= MAX_CLASS_LINES, f"{path.name}: class {node.name} is {size} lines"
