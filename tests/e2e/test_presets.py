"""The cloud presets on the local stack, against the double's admission profile of the platform they target.

composer3 runs against a composer-user-workloads namespace with the ``composer3`` profile, composer2 against
a namespace with the ``gke-autopilot`` profile. What a user sees: the plan's bent resources are what the pod
got (the profile had nothing left to change), a script Composer 3 cannot run is rejected at discovery with
the reason, and a pod the composer3 preset did not prepare (the local preset's 100m cpu) is refused with
Composer's message. Only what names this machine differs from the cloud presets: the image, the kube
connection (instead of Composer's kube config file or in-cluster access), composer2's service account (one
the local IAM knows) and the emulators' environment. composer3's pods run as the namespace's default
service account, which stands for the environment's identity in the local IAM policy.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.kube_double.admission_autopilot import ANNOTATION
from local.kube_double.profiles import PROFILE_LABEL

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPTS = Path(__file__).parent / "scripts" / "presets"
C3_NS = "composer-user-workloads"
C2_NS = "script-runner"
IMAGE = "localhost/script-runner:local"
PATH_ANNOTATION = "script-runner.io/script-path"
# The cloud presets minus what only exists in the cloud: Composer's kube config file and in-cluster access.
COMPOSER3 = {"preset": "composer3", "config_file": None, "image": IMAGE}
# composer2's pods run as the Kubernetes service account bound to a Google identity: script-runner in the
# cloud (k8s/), reader in the local IAM policy.
COMPOSER2 = {"preset": "composer2", "in_cluster": None, "image": IMAGE, "service_account": "reader"}
COMPOSER_DENIAL = 'admission webhook "user-workloads.composer.googleapis.com" denied the request'


def _kube(runner: Any, method: str, path: str, body: Any, content_type: str = "application/json") -> Any:
    req = urllib.request.Request(
        f"{runner.kube_url}{path}",
        method=method,
        data=json.dumps(body).encode(),
        headers={"Content-Type": content_type},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _label(runner: Any, namespace: str, labels: dict[str, str | None]) -> None:
    patch = {"metadata": {"labels": labels}}
    _kube(runner, "PATCH", f"/api/v1/namespaces/{namespace}", patch, "application/merge-patch+json")


def _audit(runner: Any, since: int, script: str) -> list[dict[str, Any]]:
    """What admission made of this script's pods, after entry ``since`` of the double's audit."""
    entries = list(runner._double("GET", "/_double/audit"))[since:]
    return [e for e in entries if e["annotations"].get(PATH_ANNOTATION) == script]


@pytest.fixture
def composer3_namespace(runner: Any) -> Iterator[None]:
    """composer-user-workloads with the composer3 profile for one test (the other tests use it plainly)."""
    _label(runner, C3_NS, {PROFILE_LABEL: "composer3"})
    try:
        yield
    finally:
        _label(runner, C3_NS, {PROFILE_LABEL: None})


@pytest.fixture
def autopilot_namespace(runner: Any) -> None:
    labels = {PROFILE_LABEL: "gke-autopilot", "pod-security.kubernetes.io/enforce": "restricted"}
    try:
        _kube(runner, "POST", "/api/v1/namespaces", {"metadata": {"name": C2_NS, "labels": labels}})
    except urllib.error.HTTPError as err:
        if err.code != 409:  # 409: it exists (a reused stack): label it instead
            raise
        _label(runner, C2_NS, dict(labels))


def _discover_log(run: Any) -> str:
    return str(run.runner.stack.task_log("gcs_script_runner", run.run_id, "discover", -1, 1))


def test_composer3_preset_runs_pods_composer3_admits_with_the_planned_resources(
    runner: Any, composer3_namespace: None
) -> None:
    since = len(runner._double("GET", "/_double/audit"))
    run = runner.run_scripts(SCRIPTS / "composer3", prefix="e2e-preset-c3/", settings=COMPOSER3)

    assert run.state == "failed"  # loader.sh was rejected: the report fails the run
    assert run.mapped_tasks()["small.sh"]["state"] == "success"
    assert "E2E-PRESET-MARKER preset=composer3" in run.log("small.sh")
    admitted = _audit(runner, since, "small.sh")
    assert [(e["code"], e["namespace"], e["profile"]) for e in admitted] == [(201, C3_NS, "composer3")]
    bent = {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "1Gi"}
    assert admitted[0]["resources"]["base"] == {"requests": bent, "limits": bent}
    assert "composer3: cpu 100m -> 250m" in _discover_log(run)

    report = run.report()
    rows = {r["path"]: r for r in report["scripts"]}
    assert rows["small.sh"]["status"] == "success"
    assert [r["path"] for r in report["rejected"]] == ["loader.sh"]
    # composer3 impersonates Google service accounts from the allowlist; none is allowed here.
    assert "'reader' is not allowed to be impersonated" in report["rejected"][0]["reason"]
    assert "E2E-PRESET-NEVER-RUNS" not in json.dumps(report)
    assert runner.pods_left() == []


def test_composer2_preset_runs_pods_autopilot_leaves_as_planned(
    runner: Any, autopilot_namespace: None
) -> None:
    since = len(runner._double("GET", "/_double/audit"))
    run = runner.run_scripts(SCRIPTS / "autopilot", prefix="e2e-preset-c2/", settings=COMPOSER2)

    assert run.state == "success"
    assert "E2E-PRESET-MARKER preset=composer2" in run.log("heavy.sh")
    admitted = _audit(runner, since, "heavy.sh")
    assert [(e["code"], e["namespace"], e["profile"]) for e in admitted] == [(201, C2_NS, "gke-autopilot")]
    # memory=2Gi needs at least 2Gi/6.5 of a vCPU: the plan asked for 500m, so Autopilot changed nothing.
    planned = {"cpu": "500m", "memory": "2Gi", "ephemeral-storage": "1Gi"}
    assert admitted[0]["resources"]["base"] == {"requests": planned, "limits": planned}
    assert ANNOTATION not in admitted[0]["annotations"]
    assert "autopilot: cpu 250m -> 500m" in _discover_log(run)
    assert run.report()["scripts"][0]["status"] == "success"
    assert runner.pods_left() == []


def test_a_pod_composer3_does_not_support_is_refused_with_composers_message(
    runner: Any, composer3_namespace: None
) -> None:
    since = len(runner._double("GET", "/_double/audit"))
    run = runner.run_scripts(SCRIPTS / "refused", prefix="e2e-preset-refused/", settings={"preset": "local"})

    assert run.state == "failed"
    refused = _audit(runner, since, "tiny.sh")
    assert refused
    assert {e["code"] for e in refused} == {403}
    assert refused[0]["message"].startswith(COMPOSER_DENIAL)
    assert "cpu request 100m is not a supported value" in refused[0]["message"]
    task_log = run.log("tiny.sh")  # the API's Status body, JSON-quoted in the exception
    assert "user-workloads.composer.googleapis.com" in task_log
    assert "denied the request" in task_log
    row = run.report()["scripts"][0]
    assert row["path"] == "tiny.sh"
    assert row["status"] != "success"
    assert runner.pods_left() == []
