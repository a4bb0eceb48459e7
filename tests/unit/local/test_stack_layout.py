"""The local stack's modules, checked: each has one job and a docstring, none is over 400 lines, and they
import one another without a cycle, ``local.stack`` (the orchestration) on top, imported by none of them
(its callers: the Makefile, the demo, the e2e tests and the benchmarks).

Every import counts, including those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parents[3] / "local"
# module -> the stack modules it may import (besides the rest of ``local``: pubsub, pg_homes, iam_front)
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "pod_env": {"config"},
    "airflow_env": {"config", "pod_env"},
    "processes": {"config", "airflow_env"},
    "postgres": {"config", "airflow_env", "processes"},
    "services": {"config", "airflow_env", "pod_env", "processes"},
    "kube": {"config", "pod_env", "processes"},
    "airflow_processes": {"config", "airflow_env", "postgres", "processes"},
    "stack": {
        "config",
        "airflow_env",
        "pod_env",
        "processes",
        "postgres",
        "services",
        "kube",
        "airflow_processes",
    },
}
MAX_MODULE_LINES = 400


def _imports(path: Path) -> set[str]:
    """The stack modules a file imports (``from local import x`` and ``from local.x import y`` count x)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "local" and len(parts) > 1 and parts[1] in ALLOWED:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_stack_module_imports_only_what_it_may(module: str) -> None:
    path = LOCAL / f"{module}.py"
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path} says what it owns"
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES
    assert _imports(path) - {module} <= ALLOWED[module]


def test_stack_modules_have_no_cycle() -> None:
    graph = {name: _imports(LOCAL / f"{name}.py") - {name} for name in ALLOWED}
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle
    assert order[-1] == "stack"
