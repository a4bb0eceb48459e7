"""What parsing the DAG file imports in a warm Airflow worker: nothing of gRPC or google-api-core, and none
of the runner's pydantic models (settings, script specs): building them is for the tasks (issue 26)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# A warm worker: Airflow's SDK and the KubernetesPodOperator are loaded (the preload, or an earlier task),
# then the DAG file is parsed; print what that parse added.
WARM_PARSE = """
import json, runpy, sys
try:
    import airflow.sdk  # Airflow 3
except ImportError:
    import airflow.models  # Airflow 2
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
before = set(sys.modules)
runpy.run_path(sys.argv[1])
print(json.dumps(sorted(set(sys.modules) - before)))
"""
HEAVY = ("grpc", "google.api_core", "google.cloud.storage", "google.protobuf")
# Modules whose import builds pydantic models (most of what the parse added to a bare KPO DAG's).
MODELS = (
    "script_runner.config.settings",
    "script_runner.config.identity_bindings",
    "script_runner.discover.spec",
)


# Runs on upload wired (operator guide): the DAG's schedule carries the upload watcher's trigger, which every
# parse builds, task processes included; the Pub/Sub client (gRPC) is the triggerer's business only.
UPLOAD_WIRED = {"SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION": "projects/test-project/subscriptions/uploads"}


def _new_modules(dag_file: Path, home: Path, extra_env: dict[str, str] | None = None) -> list[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "dags"),
        "AIRFLOW_HOME": str(home),
        **(extra_env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-c", WARM_PARSE, str(dag_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("extra_env", [{}, UPLOAD_WIRED], ids=["default", "upload-wired"])
def test_parse_imports_no_grpc_nor_google_api_core_nor_the_storage_client(
    tmp_path: Path, extra_env: dict[str, str]
) -> None:
    new = _new_modules(ROOT / "dags" / "gcs_script_runner.py", tmp_path, extra_env)
    heavy = [m for m in new if m.startswith(HEAVY)]
    assert heavy == [], f"the DAG file's parse imports {len(heavy)} heavy modules: {heavy[:10]}"
    assert any(m.startswith("script_runner") for m in new)  # the parse did run


def test_parse_imports_no_settings_or_spec_models(tmp_path: Path) -> None:
    new = _new_modules(ROOT / "dags" / "gcs_script_runner.py", tmp_path)
    models = [m for m in new if m in MODELS]
    assert models == [], f"the DAG file's parse builds the runner's pydantic models: {models}"
    assert "script_runner.run.operator" in new  # the parse did reach the operator
