"""Env values stay out of the task log when the API server refuses a pod (issue 25 item 9).

The provider's PodManager logs "Exception when attempting to create Namespaced Pod:" with the whole pod
JSON; the Kubernetes double refuses an invalid pod the way the API server does (422).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from script_runner.run.log_redaction import redact_pod
from script_runner.run.operator import ScriptPodOperator
from tests.unit.local.kube_double_process import running_double
from tests.unit.script_runner.run.test_operator import SCRIPT, SETTINGS

try:  # Airflow 3 logs through structlog; Airflow 2.11 through the standard logging that caplog sees
    from structlog.testing import capture_logs
except ImportError:  # pragma: no cover - Airflow 2.11's venv
    capture_logs = None


def _captured() -> Any:
    return capture_logs() if capture_logs is not None else contextlib.nullcontext([])


SECRET = "E2E-ENV-VALUE-7d1f0c"


def test_a_refused_pod_is_logged_without_its_env_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with running_double(tmp_path / "double"):
        op = ScriptPodOperator(
            task_id="run_scripts",
            script={**SCRIPT, "env": {"API_KEY": SECRET}},
            runner_settings=SETTINGS,
            config_file=str(tmp_path / "double" / "kubeconfig"),
        )
        pod = op.build_pod_request_obj()
        pod.metadata.labels["run_id"] = "manual 2026"  # not a label value: the API server refuses the pod
        caplog.set_level(logging.DEBUG)
        with _captured() as captured, pytest.raises(ApiException) as refused:
            op.pod_manager.create_pod(pod=pod)
    assert refused.value.status == 422
    logged = caplog.text + "\n".join(f"{e.get('event')} {e.get('positional_args', '')}" for e in captured)
    assert "Exception when attempting to create Namespaced Pod" in logged
    assert '"API_KEY"' in logged  # the pod is still there to read, its values are not
    assert SECRET not in logged


def test_redact_pod_replaces_values_in_every_form_and_leaves_other_arguments() -> None:
    pod = {"spec": {"containers": [{"env": [{"name": "K", "value": SECRET}, {"name": "E", "value": ""}]}]}}
    assert SECRET not in str(redact_pod(pod))
    assert SECRET not in redact_pod(str(pod).replace("'", '"'))
    assert redact_pod('not json "env" ' + SECRET) == "<pod body withheld: it holds env values>"
    assert redact_pod("plain text") == "plain text"
    assert redact_pod(3) == 3
