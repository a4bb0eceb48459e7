"""The pods the composer3 and composer2 presets build are what their platforms admit unchanged: Composer 3
refuses none of them, and Autopilot has nothing left to adjust (the plan already shows what runs)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient

from local.kube_double import admission_autopilot, admission_composer3
from local.kube_double.__main__ import kubeconfig
from script_runner.config.settings import RunnerSettings
from script_runner.config.settings_loader import load_settings
from script_runner.discover.directives import parse_directives
from script_runner.discover.resolve import resolve
from script_runner.discover.spec import ScriptObject, spec_to_xcom
from script_runner.run.operator import ScriptPodOperator

ENV = {"GCS_BUCKET": "b", "SCRIPT_RUNNER_IMAGE": "img", "SCRIPT_RUNNER_MAX_MEMORY": "64Gi"}
OBJ = ScriptObject(path="etl/load.sh", uri="gs://b/data/etl/load.sh", generation="5", md5="m")
HEADERS = [
    pytest.param("# runner: cpu=100m memory=64Mi ephemeral_storage=1Mi", id="below-minimums"),
    pytest.param("# runner: cpu=3 memory=1Gi", id="cpu-heavy"),
    pytest.param("# runner: cpu=100m memory=40Gi", id="memory-heavy"),
    pytest.param("# runner: cpu=1300m memory=3Gi", id="off-step"),
    pytest.param("", id="defaults"),
]


def built_pod(tmp_path: Path, header: str, settings: RunnerSettings) -> dict[str, Any]:
    spec = resolve(OBJ, parse_directives(OBJ.path, header), settings)
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig("127.0.0.1", 1, settings.namespace))
    op = ScriptPodOperator(
        task_id="run_scripts", script=spec_to_xcom(spec), runner_settings=settings, config_file=str(config)
    )
    pod: dict[str, Any] = ApiClient().sanitize_for_serialization(op.build_pod_request_obj())
    return pod


@pytest.mark.parametrize("header", HEADERS)
def test_composer3_preset_pods_are_admitted_by_the_composer3_profile(tmp_path: Path, header: str) -> None:
    settings = load_settings(environ={**ENV, "SCRIPT_RUNNER_PRESET": "composer3"})
    assert admission_composer3.violations(built_pod(tmp_path, header, settings)) == []


@pytest.mark.parametrize("header", HEADERS)
def test_composer2_preset_pods_are_left_alone_by_autopilot(tmp_path: Path, header: str) -> None:
    in_cluster = load_settings(environ={**ENV, "SCRIPT_RUNNER_PRESET": "composer2"})
    settings = in_cluster.model_copy(update={"in_cluster": None})  # reached through a kube config here
    pod = built_pod(tmp_path, header, settings)
    before = copy.deepcopy(pod)
    assert admission_autopilot.admit(pod) is None
    assert admission_autopilot.ANNOTATION not in (pod["metadata"].get("annotations") or {})
    assert pod == before


def test_local_preset_pods_would_be_refused_by_composer3(tmp_path: Path) -> None:
    settings = load_settings(environ={**ENV, "SCRIPT_RUNNER_PRESET": "local"})
    problems = admission_composer3.violations(built_pod(tmp_path, "# runner: cpu=100m", settings))
    assert problems == ["container 'base': cpu request 100m is not a supported value (between 250m and 30)"]
