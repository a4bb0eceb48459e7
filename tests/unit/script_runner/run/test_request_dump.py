"""KPO's debug YAML of the pod request is built only when debug logging is on; the request sent is whole."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s

from script_runner.run.operator import ScriptPodOperator
from script_runner.run.request_dump import debug_enabled, no_debug_dump
from tests.unit.script_runner.run.test_operator import SCRIPT, SETTINGS


def _request() -> k8s.V1Pod:
    env = [k8s.V1EnvVar(name="RUNNER_SCRIPT_PATH", value="etl/load.sh")]
    container = k8s.V1Container(name="base", image="img", env=env)
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="p", namespace="ns"), spec=k8s.V1PodSpec(containers=[container])
    )


def _logger(level: int) -> logging.Logger:
    logger = logging.getLogger(f"test_request_dump.{level}")
    logger.setLevel(level)
    return logger


def test_no_debug_dump_empties_to_dict_only_inside_the_block_with_debug_off() -> None:
    pod = _request()
    whole = pod.to_dict()
    with no_debug_dump(pod, _logger(logging.INFO)):
        assert pod.to_dict() == {}
        # what the API client sends does not go through to_dict
        assert ApiClient().sanitize_for_serialization(pod)["spec"]["containers"][0]["env"] == [
            {"name": "RUNNER_SCRIPT_PATH", "value": "etl/load.sh"}
        ]
    assert pod.to_dict() == whole
    assert "to_dict" not in vars(pod)


def test_no_debug_dump_leaves_the_dump_alone_with_debug_on() -> None:
    pod = _request()
    with no_debug_dump(pod, _logger(logging.DEBUG)):
        assert pod.to_dict() == pod.to_dict() != {}


def test_no_debug_dump_restores_to_dict_after_an_error() -> None:
    pod = _request()
    with pytest.raises(RuntimeError), no_debug_dump(pod, _logger(logging.INFO)):
        raise RuntimeError("create refused")
    assert pod.to_dict() != {}


def test_a_logger_that_cannot_say_counts_as_debug_on() -> None:
    assert debug_enabled(object()) is True
    assert debug_enabled(_logger(logging.WARNING)) is False


class Kube:
    """The API calls of KPO's get_or_create_pod: no pod yet, so one is created (its body recorded)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def list_namespaced_pod(self, *, namespace: str, label_selector: str) -> Any:
        return SimpleNamespace(items=[])

    def create_pod(self, *, pod: k8s.V1Pod) -> k8s.V1Pod:
        self.sent.append(ApiClient().sanitize_for_serialization(pod))
        return pod


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG], ids=["debug-off", "debug-on"])
def test_operator_builds_kpos_debug_yaml_only_with_debug_on(
    level: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.cncf.kubernetes.operators import pod as kpo

    dumped: list[Any] = []
    real_dump = kpo.yaml.safe_dump
    monkeypatch.setattr(kpo.yaml, "safe_dump", lambda data, *a, **k: dumped.append(data) or real_dump(data))
    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS)
    kube = Kube()
    op.__dict__.update(hook=kube, client=kube, pod_manager=kube)
    monkeypatch.setattr(op, "_log", _logger(level), raising=False)
    monkeypatch.setattr(type(op), "log", property(lambda self: self._log))
    ti = SimpleNamespace(dag_id="gcs_script_runner", task_id="run_scripts", map_index=0, try_number=1)
    context: dict[str, Any] = {"ti": ti, "run_id": "r1", "dag": SimpleNamespace()}
    op._context, op._earlier = context, []
    request = _request()
    got = op.get_or_create_pod(request, context)
    assert got is request
    assert kube.sent[0]["spec"]["containers"][0]["env"][0]["name"] == "RUNNER_SCRIPT_PATH"
    assert dumped == ([{}] if level == logging.INFO else [request.to_dict()])
    assert request.to_dict() != {}
