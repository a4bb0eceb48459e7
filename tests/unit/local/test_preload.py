"""The local stack's worker preload (benchmark variant ``preload``) holds every module of the runner that a
task imports lazily: a task forked from a preloaded worker then imports none of its own."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "dags" / "script_runner"
# The modules whose functions run in a run task (and, for upload/watch.py, in each task's parse).
TASK_SIDE = [*sorted((PACKAGE / "run").glob("*.py")), PACKAGE / "upload" / "watch.py", PACKAGE / "dag.py"]


def lazy_runner_imports() -> set[str]:
    """The runner's modules imported inside functions of the task-side modules."""
    found: set[str] = set()
    for path in TASK_SIDE:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for sub in ast.walk(node):
                if (
                    isinstance(sub, ast.ImportFrom)
                    and sub.level == 0
                    and (sub.module or "").startswith("script_runner.")
                ):
                    found.add(str(sub.module))
    return found


def test_preload_holds_every_module_a_run_task_imports_lazily() -> None:
    wanted = lazy_runner_imports()
    assert "script_runner.run.gcs_write" in wanted  # the walk sees the ledger's lazy import
    code = (
        "import json, sys, airflow_local_settings\n"
        f"print(json.dumps(sorted(m for m in {sorted(wanted)!r} if m not in sys.modules)))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "dags"), str(ROOT / "local" / "preload")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    missing = json.loads(done.stdout.strip().splitlines()[-1])
    assert missing == [], f"add to RUNTIME_MODULES in local/preload/airflow_local_settings.py: {missing}"
