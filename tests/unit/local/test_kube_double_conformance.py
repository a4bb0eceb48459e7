"""Conformance of the strict API double: the real kubernetes client sends valid and invalid objects and
gets the codes, reasons and messages a real API server answers with (validation, Pod Security admission,
conflicts, stale watches)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.unit.local.kube_double_process import running_double

NS = "composer-user-workloads"  # enforces "restricted" (the double's default)
BASELINE_NS = "team-baseline"
OPEN_NS = "team-open"  # no Pod Security label: privileged
SUBDOMAIN_RULE = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"
RESTRICTED_CTX = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_double(
        tmp_path_factory.mktemp("kube"),
        "--namespace-label",
        f"{BASELINE_NS}:pod-security.kubernetes.io/enforce=baseline",
        "--namespace-label",
        OPEN_NS,
        "--watch-history",
        "40",
    ) as started:
        yield started


def make_pod(name: str, **container: Any) -> dict[str, Any]:
    """A pod the restricted level admits; ``container`` overrides fields of its one container."""
    base = {"name": "base", "image": "x", "command": ["sleep", "30"], "securityContext": dict(RESTRICTED_CTX)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "conformance"}},
        "spec": {"restartPolicy": "Never", "containers": [{**base, **container}]},
    }


def rejected(api: client.CoreV1Api, body: dict[str, Any], namespace: str = NS) -> tuple[int, dict[str, Any]]:
    """Create ``body`` expecting a refusal; the HTTP code and the Status body."""
    with pytest.raises(ApiException) as err:
        api.create_namespaced_pod(namespace, body)
    return err.value.status, json.loads(err.value.body)


def causes(status: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["field"], c["reason"]) for c in status["details"]["causes"]]


def test_double_a_valid_restricted_pod_is_created_with_the_api_server_defaults(
    double: dict[str, Any],
) -> None:
    created = double["api"].create_namespaced_pod(NS, make_pod("valid-pod"))
    assert created.metadata.name == "valid-pod"
    assert created.metadata.uid
    assert created.spec.dns_policy == "ClusterFirst"
    assert created.spec.service_account_name == "default"
    assert created.status.phase == "Pending"
    double["api"].delete_namespaced_pod("valid-pod", NS, grace_period_seconds=0)


def test_double_a_pod_name_with_an_underscore_and_capitals_is_invalid(double: dict[str, Any]) -> None:
    code, status = rejected(double["api"], make_pod("Bad_Name"))
    assert code == 422
    assert status["reason"] == "Invalid"
    assert status["message"].startswith(
        'Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
    )
    assert SUBDOMAIN_RULE in status["message"]
    assert causes(status) == [("metadata.name", "FieldValueInvalid")]
    assert status["details"]["name"] == "Bad_Name"
    assert status["details"]["kind"] == "Pod"


def test_double_a_pod_name_longer_than_253_characters_is_invalid(double: dict[str, Any]) -> None:
    code, status = rejected(double["api"], make_pod("a" * 254))
    assert code == 422
    assert "must be no more than 253 characters" in status["message"]


def test_double_a_label_value_of_64_characters_is_invalid(double: dict[str, Any]) -> None:
    body = make_pod("long-label")
    body["metadata"]["labels"]["run_id"] = "v" * 64
    code, status = rejected(double["api"], body)
    assert code == 422
    assert (
        f'metadata.labels: Invalid value: "{"v" * 64}": must be no more than 63 characters'
        in status["message"]
    )
    body["metadata"]["labels"]["run_id"] = "v" * 63
    double["api"].create_namespaced_pod(NS, body)
    double["api"].delete_namespaced_pod("long-label", NS, grace_period_seconds=0)


def test_double_a_label_value_with_a_space_and_a_bad_label_key_are_both_reported(
    double: dict[str, Any],
) -> None:
    body = make_pod("spaced-label")
    body["metadata"]["labels"] = {"run id/x/y": "ok", "run": "a b"}
    code, status = rejected(double["api"], body)
    assert code == 422
    assert status["message"].startswith('Pod "spaced-label" is invalid: [metadata.labels: Invalid value: ')
    assert (
        '"a b": a valid label must be an empty string or consist of alphanumeric characters'
        in status["message"]
    )
    assert "a qualified name must consist of alphanumeric characters" in status["message"]
    assert len(status["details"]["causes"]) == 2


def test_double_a_memory_quantity_that_is_not_a_number_cannot_be_decoded(double: dict[str, Any]) -> None:
    code, status = rejected(double["api"], make_pod("lots", resources={"limits": {"memory": "lots"}}))
    assert code == 400
    assert status["reason"] == "BadRequest"
    assert status["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: quantities must match the regular expression '
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


def test_double_requests_above_limits_are_invalid_and_equal_ones_are_fine(double: dict[str, Any]) -> None:
    over = {"requests": {"memory": "2Gi", "cpu": "500m"}, "limits": {"memory": "1Gi", "cpu": "0.5"}}
    code, status = rejected(double["api"], make_pod("greedy", resources=over))
    assert code == 422
    assert causes(status) == [("spec.containers[0].resources.requests", "FieldValueInvalid")]
    assert 'Invalid value: "2Gi": must be less than or equal to memory limit of 1Gi' in status["message"]
    fine = {"requests": {"memory": "1024Mi", "cpu": "500m"}, "limits": {"memory": "1Gi", "cpu": "0.5"}}
    double["api"].create_namespaced_pod(NS, make_pod("modest", resources=fine))
    double["api"].delete_namespaced_pod("modest", NS, grace_period_seconds=0)


def test_double_an_unknown_resource_name_and_a_negative_quantity_are_invalid(double: dict[str, Any]) -> None:
    code, status = rejected(double["api"], make_pod("odd", resources={"limits": {"gpus": "1", "cpu": "-1"}}))
    assert code == 422
    assert ("spec.containers[0].resources.limits[gpus]", "FieldValueInvalid") in causes(status)
    assert "must be a standard resource type or fully qualified" in status["message"]
    assert "must be greater than or equal to 0" in status["message"]


def test_double_two_containers_with_the_same_name_are_a_duplicate(double: dict[str, Any]) -> None:
    body = make_pod("twins")
    body["spec"]["containers"].append(copy.deepcopy(body["spec"]["containers"][0]))
    code, status = rejected(double["api"], body)
    assert code == 422
    assert 'spec.containers[1].name: Duplicate value: "base"' in status["message"]
    assert causes(status) == [("spec.containers[1].name", "FieldValueDuplicate")]


def test_double_required_fields_and_dangling_mounts_are_reported(double: dict[str, Any]) -> None:
    body = make_pod("sparse", image="", volumeMounts=[{"name": "nowhere", "mountPath": "/data"}])
    body["spec"]["restartPolicy"] = "Sometimes"
    code, status = rejected(double["api"], body)
    assert code == 422
    assert set(causes(status)) == {
        ("spec.containers[0].image", "FieldValueRequired"),
        ("spec.containers[0].volumeMounts[0].name", "FieldValueNotFound"),
        ("spec.restartPolicy", "FieldValueNotSupported"),
    }
    assert (
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always"' in status["message"]
    )
    no_containers = make_pod("empty")
    no_containers["spec"]["containers"] = []
    code, status = rejected(double["api"], no_containers)
    assert (code, causes(status)) == (422, [("spec.containers", "FieldValueRequired")])


def test_double_annotations_over_256_kib_in_total_are_too_long(double: dict[str, Any]) -> None:
    body = make_pod("chatty")
    body["metadata"]["annotations"] = {"a": "x" * 200_000, "b": "y" * 70_000}
    code, status = rejected(double["api"], body)
    assert code == 422
    assert "metadata.annotations: Too long: must have at most 262144 bytes" in status["message"]
    assert causes(status) == [("metadata.annotations", "FieldValueTooLong")]


def test_double_a_privileged_container_violates_the_restricted_level(double: dict[str, Any]) -> None:
    code, status = rejected(double["api"], make_pod("root-pod", securityContext={"privileged": True}))
    assert code == 403
    assert status["reason"] == "Forbidden"
    assert status["message"].startswith(
        'pods "root-pod" is forbidden: violates PodSecurity "restricted:latest": '
    )
    assert 'privileged (container "base" must not set securityContext.privileged=true)' in status["message"]
    assert "allowPrivilegeEscalation != false" in status["message"]


def test_double_a_pod_without_a_security_context_lists_every_restricted_violation(
    double: dict[str, Any],
) -> None:
    body = make_pod("plain")
    del body["spec"]["containers"][0]["securityContext"]
    code, status = rejected(double["api"], body)
    assert code == 403
    assert status["message"] == (
        'pods "plain" is forbidden: violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "base" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "base" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "base" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "base" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost")'
    )


def test_double_added_capabilities_and_root_user_violate_the_restricted_level(double: dict[str, Any]) -> None:
    ctx = {**RESTRICTED_CTX, "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}, "runAsUser": 0}
    code, status = rejected(double["api"], make_pod("capable", securityContext=ctx))
    assert code == 403
    assert (
        'unrestricted capabilities (container "base" must not include "SYS_ADMIN" in '
        "securityContext.capabilities.add)" in status["message"]
    )
    assert 'runAsUser=0 (container "base" must not set runAsUser=0)' in status["message"]


def test_double_the_baseline_level_admits_a_plain_pod_but_not_host_access(double: dict[str, Any]) -> None:
    api = double["api"]
    plain = make_pod("plain-baseline")
    del plain["spec"]["containers"][0]["securityContext"]
    api.create_namespaced_pod(BASELINE_NS, plain)
    api.delete_namespaced_pod("plain-baseline", BASELINE_NS, grace_period_seconds=0)
    host = make_pod("host-baseline", volumeMounts=[{"name": "root", "mountPath": "/host"}])
    host["spec"]["hostNetwork"] = True
    host["spec"]["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    code, status = rejected(api, host, BASELINE_NS)
    assert code == 403
    assert status["message"] == (
        'pods "host-baseline" is forbidden: violates PodSecurity "baseline:latest": '
        'host namespaces (hostNetwork=true), hostPath volumes (volume "root")'
    )


def test_double_a_namespace_without_a_level_admits_a_privileged_pod(double: dict[str, Any]) -> None:
    body = make_pod("privileged-ok", securityContext={"privileged": True})
    double["api"].create_namespaced_pod(OPEN_NS, body)
    double["api"].delete_namespaced_pod("privileged-ok", OPEN_NS, grace_period_seconds=0)


def test_double_the_level_follows_the_namespace_label(double: dict[str, Any]) -> None:
    api = double["api"]
    api.create_namespace({"metadata": {"name": "relabelled"}})
    api.patch_namespace(
        "relabelled", {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    code, status = rejected(api, make_pod("late", securityContext={"privileged": True}), "relabelled")
    assert code == 403
    assert "restricted:latest" in status["message"]


def test_double_an_invalid_namespace_name_is_invalid_and_an_unknown_namespace_is_not_found(
    double: dict[str, Any],
) -> None:
    api = double["api"]
    with pytest.raises(ApiException) as err:
        api.create_namespace({"metadata": {"name": "Team.A"}})
    assert err.value.status == 422
    assert "a lowercase RFC 1123 label must consist of" in json.loads(err.value.body)["message"]
    code, status = rejected(api, make_pod("lost"), "nowhere")
    assert (code, status["reason"], status["message"]) == (404, "NotFound", 'namespaces "nowhere" not found')


def test_double_creating_a_pod_twice_is_already_exists_and_a_missing_pod_is_not_found(
    double: dict[str, Any],
) -> None:
    api = double["api"]
    api.create_namespaced_pod(NS, make_pod("once"))
    code, status = rejected(api, make_pod("once"))
    assert (code, status["reason"], status["message"]) == (409, "AlreadyExists", 'pods "once" already exists')
    assert status["details"] == {"name": "once", "kind": "pods"}
    api.delete_namespaced_pod("once", NS, grace_period_seconds=0)
    with pytest.raises(ApiException) as err:
        api.read_namespaced_pod("never-made", NS)
    assert err.value.status == 404
    assert json.loads(err.value.body)["message"] == 'pods "never-made" not found'


def test_double_generate_name_gets_a_valid_random_suffix(double: dict[str, Any]) -> None:
    body = make_pod("")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "script-"
    created = double["api"].create_namespaced_pod(NS, body)
    assert created.metadata.name.startswith("script-")
    assert len(created.metadata.name) == len("script-") + 5
    double["api"].delete_namespaced_pod(created.metadata.name, NS, grace_period_seconds=0)


def test_double_patches_change_labels_but_not_the_spec_and_a_stale_version_conflicts(
    double: dict[str, Any],
) -> None:
    api = double["api"]
    first = api.create_namespaced_pod(NS, make_pod("patched"))
    api.patch_namespaced_pod("patched", NS, {"metadata": {"labels": {"stage": "two"}}})
    api.patch_namespaced_pod(
        "patched", NS, [{"op": "add", "path": "/metadata/annotations", "value": {"note": "hello"}}]
    )
    current = api.read_namespaced_pod("patched", NS)
    assert current.metadata.labels["stage"] == "two"
    assert current.metadata.annotations == {"note": "hello"}
    api.patch_namespaced_pod("patched", NS, {"spec": {"containers": [{"name": "base", "image": "y"}]}})
    assert api.read_namespaced_pod("patched", NS).spec.containers[0].image == "y"
    for body, code, field in (
        ({"metadata": {"labels": {"stage": "two words"}}}, 422, "metadata.labels"),
        ({"spec": {"containers": [{"name": "base", "command": ["true"]}]}}, 422, "spec"),
        ({"metadata": {"resourceVersion": first.metadata.resource_version, "labels": {"x": "y"}}}, 409, None),
    ):
        with pytest.raises(ApiException) as err:
            api.patch_namespaced_pod("patched", NS, body)
        status = json.loads(err.value.body)
        assert err.value.status == code
        if field:
            assert status["details"]["causes"][0]["field"] == field
        else:
            assert status["reason"] == "Conflict"
            assert "the object has been modified" in status["message"]
    assert "spec: Forbidden: pod updates may not change fields other than" in _forbidden_update(api)
    api.delete_namespaced_pod("patched", NS, grace_period_seconds=0)


def _forbidden_update(api: client.CoreV1Api) -> str:
    with pytest.raises(ApiException) as err:
        api.patch_namespaced_pod("patched", NS, {"spec": {"restartPolicy": "Always"}})
    return str(json.loads(err.value.body)["message"])


def test_double_a_watch_from_a_version_older_than_the_history_is_gone(double: dict[str, Any]) -> None:
    api = double["api"]
    api.create_namespaced_pod(NS, make_pod("busy"))
    for i in range(45):  # more changes than the double keeps (--watch-history 40)
        api.patch_namespaced_pod("busy", NS, {"metadata": {"labels": {"n": str(i)}}})
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(api.list_namespaced_pod, NS, resource_version="2", timeout_seconds=5):
            pass
    assert err.value.status == 410
    assert "Expired: too old resource version: 2" in str(err.value.reason)
    latest = api.list_namespaced_pod(NS).metadata.resource_version
    stream = watch.Watch().stream(api.list_namespaced_pod, NS, resource_version=latest, timeout_seconds=1)
    # A fresh version still watches (no 410). The kubelet may still be moving the pod (Pending -> Running)
    # meanwhile: those changes come through, all of them newer than the version asked for.
    changes = list(stream)
    assert all(int(c["object"].metadata.resource_version) > int(latest) for c in changes), changes
    api.delete_namespaced_pod("busy", NS, grace_period_seconds=0)


@pytest.mark.parametrize(
    ("resources", "qos", "requests"),
    [
        pytest.param(
            {"limits": {"cpu": "1", "memory": "1Gi"}},
            "Guaranteed",
            {"cpu": "1", "memory": "1Gi"},
            id="limits-only",
        ),
        pytest.param(
            {"requests": {"cpu": "1000m", "memory": "1024Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "Guaranteed",
            {"cpu": "1000m", "memory": "1024Mi"},
            id="equal-in-other-units",
        ),
        pytest.param({"requests": {"cpu": "100m"}}, "Burstable", {"cpu": "100m"}, id="requests-only"),
        pytest.param({}, "BestEffort", None, id="none"),
    ],
)
def test_double_requests_default_to_limits_and_the_qos_class_follows(
    double: dict[str, Any],
    resources: dict[str, Any],
    qos: str,
    requests: dict[str, str] | None,
    request: pytest.FixtureRequest,
) -> None:
    name = "qos-" + request.node.callspec.id
    created = double["api"].create_namespaced_pod(NS, make_pod(name, resources=resources))
    assert created.status.qos_class == qos
    assert created.spec.containers[0].resources.requests == requests
    double["api"].delete_namespaced_pod(name, NS, grace_period_seconds=0)
