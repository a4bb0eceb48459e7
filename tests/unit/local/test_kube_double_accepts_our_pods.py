"""The pods our operator builds pass the strict double's validation and the restricted Pod Security level
(the e2e suite shows it end to end; this shows it in a second, for any script path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient

from local.kube_double import admission, validation
from local.kube_double.__main__ import kubeconfig
from script_runner.run.operator import ScriptPodOperator
from tests.unit.script_runner.run.test_operator import SCRIPT, SETTINGS


def built_pod(tmp_path: Path, **script: Any) -> dict[str, Any]:
    """The pod KPO would create for this script (the kubeconfig only names a namespace: no call is made)."""
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig("127.0.0.1", 1, "composer-user-workloads"))
    op = ScriptPodOperator(
        task_id="run_scripts", script={**SCRIPT, **script}, runner_settings=SETTINGS, config_file=str(config)
    )
    pod: dict[str, Any] = ApiClient().sanitize_for_serialization(op.build_pod_request_obj())
    return pod


@pytest.mark.parametrize(
    "script",
    [
        pytest.param({}, id="plain"),
        pytest.param({"path": "Sub Folder/ÜBER load.v2.sh", "uri": "gs://b/data/x"}, id="unicode-path"),
        pytest.param({"path": "x" * 300 + ".sh", "service_account": "loader"}, id="long-path-with-sa"),
    ],
)
def test_pod_spec_our_pod_is_valid_and_restricted(tmp_path: Path, script: dict[str, Any]) -> None:
    pod = built_pod(tmp_path, **script)
    assert validation.decode_pod(pod) is None
    assert validation.pod(pod) == []
    assert admission.violations(pod, "restricted") == []


def test_pod_spec_a_weakened_copy_of_our_pod_is_refused(tmp_path: Path) -> None:
    pod = built_pod(tmp_path)
    pod["spec"]["containers"][0]["securityContext"]["privileged"] = True
    pod["metadata"]["labels"]["run_id"] = "manual 2026"
    assert [reason for reason, _ in admission.violations(pod, "restricted")] == ["privileged"]
    assert [e.field for e in validation.pod(pod)] == ["metadata.labels"]
