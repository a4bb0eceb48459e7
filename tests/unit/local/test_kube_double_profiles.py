"""Conformance of the double's admission profiles: ``composer3`` refuses what Cloud Composer 3 refuses and
runs every pod in composer-user-workloads; ``gke-autopilot`` bends resources the way GKE Autopilot does and
records it in the pod. The real kubernetes client talks to a running double."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from tests.unit.local.kube_double_process import running_double

C3_NS = "composer-user-workloads"
AP_NS = "script-runner"
ANNOTATION = "autopilot.gke.io/resource-adjustment"
COMPOSER_DENIAL = 'admission webhook "user-workloads.composer.googleapis.com" denied the request: '
RESTRICTED_CTX = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def resources(cpu: str, memory: str, storage: str = "1Gi") -> dict[str, Any]:
    """Requests equal to limits, as the runner sets them."""
    values = {"cpu": cpu, "memory": memory, "ephemeral-storage": storage}
    return {"requests": dict(values), "limits": dict(values)}


def make_pod(name: str, *, spec: dict[str, Any] | None = None, **container: Any) -> dict[str, Any]:
    """A pod restricted Pod Security admits, with 500m/1Gi; keyword arguments override its container."""
    base = {
        "name": "base",
        "image": "x",
        "command": ["sleep", "30"],
        "securityContext": dict(RESTRICTED_CTX),
        "resources": resources("500m", "1Gi"),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{**base, **container}], **(spec or {})},
    }


def refused(api: Any, namespace: str, body: dict[str, Any]) -> tuple[int, str]:
    with pytest.raises(ApiException) as err:
        api.create_namespaced_pod(namespace, body)
    status = json.loads(err.value.body)
    assert status["reason"] == "Forbidden"
    return err.value.status, str(status["message"])


@pytest.fixture(scope="module")
def c3_double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_double(
        tmp_path_factory.mktemp("kube-c3"), "--namespace-profile", f"{C3_NS}:composer3"
    ) as started:
        yield started


@pytest.fixture(scope="module")
def composer3(c3_double: dict[str, Any]) -> Any:
    return c3_double["api"]


@pytest.fixture(scope="module")
def autopilot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_double(
        tmp_path_factory.mktemp("kube-ap"), "--namespace-profile", f"{AP_NS}:gke-autopilot"
    ) as started:
        yield started["api"]


# -- composer3 ---------------------------------------------------------------------------------------------
def test_composer3_a_pod_asked_in_another_namespace_runs_in_composer_user_workloads(composer3: Any) -> None:
    created = composer3.create_namespaced_pod("my-team", make_pod("elsewhere"))
    assert created.metadata.namespace == C3_NS
    assert composer3.read_namespaced_pod("elsewhere", "my-team").metadata.namespace == C3_NS
    assert composer3.read_namespaced_pod("elsewhere", C3_NS).metadata.uid == created.metadata.uid
    listed = composer3.list_namespaced_pod("my-team", field_selector="metadata.name=elsewhere")
    assert [p.metadata.name for p in listed.items] == ["elsewhere"]
    composer3.delete_namespaced_pod("elsewhere", "my-team", grace_period_seconds=0)


def test_composer3_a_supported_pod_is_created_unchanged(composer3: Any) -> None:
    created = composer3.create_namespaced_pod(C3_NS, make_pod("fine", resources=resources("1", "4Gi")))
    assert created.spec.containers[0].resources.requests == {
        "cpu": "1",
        "memory": "4Gi",
        "ephemeral-storage": "1Gi",
    }
    assert ANNOTATION not in (created.metadata.annotations or {})
    composer3.delete_namespaced_pod("fine", C3_NS, grace_period_seconds=0)


def test_composer3_the_xcom_sidecar_is_the_one_extra_container_allowed(composer3: Any) -> None:
    sidecar = {"name": "airflow-xcom-sidecar", "image": "alpine", "securityContext": dict(RESTRICTED_CTX)}
    body = make_pod("with-xcom")
    body["spec"]["containers"].append(sidecar)
    composer3.create_namespaced_pod(C3_NS, body)
    composer3.delete_namespaced_pod("with-xcom", C3_NS, grace_period_seconds=0)

    body = make_pod("with-helper")
    body["spec"]["containers"].append({**sidecar, "name": "helper"})
    code, message = refused(composer3, C3_NS, body)
    assert code == 403
    assert message == (
        COMPOSER_DENIAL + "spec.containers: only one extra container, named airflow-xcom-sidecar, can run in "
        "Cloud Composer 3 (got 'helper')"
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"affinity": {"nodeAffinity": {}}},
            "spec.affinity: Pod affinity is not available in Cloud Composer 3",
            id="affinity",
        ),
        pytest.param(
            {"nodeSelector": {"pool": "big"}},
            "spec.nodeSelector: node selectors are not available in Cloud Composer 3",
            id="node-selector",
        ),
        pytest.param(
            {"serviceAccountName": "loader"},
            "spec.serviceAccountName: custom Kubernetes service accounts are not available in Cloud "
            "Composer 3 (got 'loader'); pods run as the environment's service account",
            id="service-account",
        ),
    ],
)
def test_composer3_refuses_what_composer_3_does_not_offer(
    composer3: Any, spec: dict[str, Any], expected: str
) -> None:
    code, message = refused(composer3, C3_NS, make_pod("unsupported", spec=spec))
    assert code == 403
    assert message == COMPOSER_DENIAL + expected


@pytest.mark.parametrize(
    ("res", "expected"),
    [
        pytest.param(
            resources("100m", "512Mi"),
            "container 'base': cpu request 100m is not a supported value (between 250m and 30)",
            id="cpu-below-minimum",
        ),
        pytest.param(
            resources("300m", "512Mi"), "container 'base': cpu 300m is not a multiple of 250m", id="cpu-step"
        ),
        pytest.param(
            resources("500m", "8Gi"),
            "container 'base': memory 8Gi for cpu 500m is 16.00 GiB per vCPU; supported: 1 to 6.5",
            id="ratio",
        ),
        pytest.param(
            resources("1", "4Gi", "20Gi"),
            "container 'base': ephemeral-storage request 20Gi is not a supported value (between 10Mi and 10Gi)",
            id="storage-above-maximum",
        ),
        pytest.param(
            {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
            "container 'base': cpu limit 2 must equal its request 1",
            id="limit-above-request",
        ),
    ],
)
def test_composer3_refuses_unsupported_resource_values(
    composer3: Any, res: dict[str, Any], expected: str
) -> None:
    code, message = refused(composer3, C3_NS, make_pod("sized", resources=res))
    assert code == 403
    assert message == COMPOSER_DENIAL + expected


def test_composer3_the_audit_keeps_what_admission_made_of_each_pod(c3_double: dict[str, Any]) -> None:
    api = c3_double["api"]
    api.create_namespaced_pod("team-b", make_pod("audited"))
    api.delete_namespaced_pod("audited", "team-b", grace_period_seconds=0)
    refused(api, C3_NS, make_pod("audited-no", spec={"nodeSelector": {"a": "b"}}))
    with urllib.request.urlopen(f"{c3_double['url']}/_double/audit", timeout=10) as resp:
        audit = {e["name"]: e for e in json.loads(resp.read())}
    assert audit["audited"]["asked_namespace"] == "team-b"
    assert audit["audited"]["namespace"] == C3_NS
    assert audit["audited"]["profile"] == "composer3"
    assert audit["audited"]["code"] == 201
    assert audit["audited"]["resources"]["base"]["requests"]["cpu"] == "500m"
    assert audit["audited-no"]["code"] == 403
    assert audit["audited-no"]["message"].startswith(COMPOSER_DENIAL)


# -- gke-autopilot -----------------------------------------------------------------------------------------
def _created(api: Any, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    pod = api.create_namespaced_pod(AP_NS, body)
    api.delete_namespaced_pod(pod.metadata.name, AP_NS, grace_period_seconds=0)
    raw = (pod.metadata.annotations or {}).get(ANNOTATION)
    return pod.spec.containers[0].resources.to_dict(), json.loads(raw) if raw else None


def test_autopilot_raises_small_requests_to_the_minimums_and_records_the_adjustment(autopilot: Any) -> None:
    res, adjustment = _created(autopilot, make_pod("tiny", resources=resources("100m", "128Mi", "1Mi")))
    bent = {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "10Mi"}
    assert res == {"requests": bent, "limits": bent, "claims": None}
    assert adjustment is not None
    assert adjustment["modified"] is True
    assert adjustment["input"]["containers"][0]["requests"] == {
        "cpu": "100m",
        "memory": "128Mi",
        "ephemeral-storage": "1Mi",
    }
    assert adjustment["output"]["containers"][0] == {"name": "base", "requests": bent, "limits": bent}


@pytest.mark.parametrize(
    ("asked", "cpu", "memory"),
    [
        pytest.param(("1", "16Gi"), "2500m", "16Gi", id="memory-heavy-raises-cpu"),
        pytest.param(("2", "1Gi"), "2", "2Gi", id="cpu-heavy-raises-memory"),
        pytest.param(("600m", "1Gi"), "750m", "1Gi", id="cpu-rounded-up-to-250m"),
    ],
)
def test_autopilot_keeps_memory_between_1_and_6_5_gib_per_cpu(
    autopilot: Any, asked: tuple[str, str], cpu: str, memory: str
) -> None:
    res, adjustment = _created(
        autopilot, make_pod(f"ratio-{asked[0]}-{asked[1]}".lower(), resources=resources(*asked))
    )
    assert res["requests"] == {"cpu": cpu, "memory": memory, "ephemeral-storage": "1Gi"}
    assert res["limits"] == res["requests"]
    assert adjustment is not None
    assert adjustment["modified"] is True


def test_autopilot_gives_a_container_without_requests_the_defaults(autopilot: Any) -> None:
    res, adjustment = _created(autopilot, make_pod("bare", resources={}))
    defaults = {"cpu": "500m", "memory": "2Gi", "ephemeral-storage": "1Gi"}
    assert res["requests"] == defaults
    assert res["limits"] == defaults
    assert adjustment is not None
    assert adjustment["input"]["containers"] == [{"name": "base"}]


def test_autopilot_leaves_a_pod_that_fits_alone(autopilot: Any) -> None:
    res, adjustment = _created(autopilot, make_pod("fits", resources=resources("500m", "1Gi")))
    assert res["requests"] == {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1Gi"}
    assert adjustment is None


def test_autopilot_refuses_requests_above_the_maximum_instead_of_lowering_them(autopilot: Any) -> None:
    code, message = refused(autopilot, AP_NS, make_pod("huge", resources=resources("40", "64Gi")))
    assert code == 403
    assert message.startswith(
        'admission webhook "warden-validating.common-webhooks.networking.gke.io" denied the request: '
        "GKE Warden rejected the request because it violates one or more constraints."
    )
    assert "workload 'huge' cpu requests '40' exceed the Autopilot maximum of '30'" in message


def test_autopilot_namespace_still_enforces_pod_security_after_the_profile(autopilot: Any) -> None:
    body = make_pod("rooted", securityContext={**RESTRICTED_CTX, "runAsNonRoot": False})
    code, message = refused(autopilot, AP_NS, body)
    assert code == 403
    assert 'violates PodSecurity "restricted:latest"' in message
