"""The kustomize overlays: they build, validate strictly, and say what our settings assume."""

from __future__ import annotations

import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from script_runner.config.presets import PRESETS
from script_runner.config.units import parse_bytes, parse_cpu
from script_runner.discover.directives import parse_directives

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
VENV_BIN = ROOT / ".venv" / "bin"
OVERLAYS = ["composer3", "composer2", "gke"]

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed"
)


def build(path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_every_object_has_app_labels(overlay: str) -> None:
    for doc in build(K8S / "overlays" / overlay):
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "gcs-script-runner", doc["metadata"]["name"]
        assert labels.get("app.kubernetes.io/part-of") == "gcs-script-runner"
        assert labels.get("app.kubernetes.io/managed-by") == "kustomize"


@pytest.mark.parametrize("overlay", ["composer2", "gke"])
def test_manifests_service_account_uses_workload_identity_without_token(overlay: str) -> None:
    docs = build(K8S / "overlays" / overlay)
    (sa,) = by_kind(docs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    gsa = sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert gsa.endswith(".iam.gserviceaccount.com")
    assert sa["metadata"]["name"] == PRESETS[overlay]["service_account"]
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        PRESETS[overlay]["namespace"]
    }


@pytest.mark.parametrize("overlay", ["composer2", "gke"])
def test_manifests_role_grants_what_the_pod_operator_calls(overlay: str) -> None:
    (role,) = by_kind(build(K8S / "overlays" / overlay), "Role")
    grants = {(res, verb) for rule in role["rules"] for res in rule["resources"] for verb in rule["verbs"]}
    for need in [("pods", v) for v in ("create", "get", "list", "watch", "delete", "patch")]:
        assert need in grants
    assert ("pods/log", "get") in grants
    assert ("events", "list") in grants
    assert not any(res == "pods/exec" for res, _ in grants)  # no xcom sidecar, no exec


@pytest.mark.parametrize(
    ("overlay", "declared"),
    [
        ("composer2", K8S / "overlays" / "composer2" / "role-binding.yaml"),
        ("gke", K8S / "base" / "role-binding.yaml"),
    ],
)
def test_manifests_role_binding_subject_stays_the_airflow_workers_account(
    overlay: str, declared: Path
) -> None:
    # kustomize's `namespace:` moves a subject named `default` into the overlay's namespace: on composer2 the
    # launcher Role went to script-runner's `default`, not the Composer workers' account in their namespace.
    (binding,) = by_kind(build(K8S / "overlays" / overlay), "RoleBinding")
    assert binding["metadata"]["namespace"] == PRESETS[overlay]["namespace"]
    assert binding["subjects"] == yaml.safe_load(declared.read_text())["subjects"]
    if overlay == "composer2":
        assert binding["subjects"][0]["name"] == "default"
        assert binding["subjects"][0]["namespace"].startswith("composer-2-")


def test_manifests_composer3_only_what_a_user_may_apply() -> None:
    docs = build(K8S / "overlays" / "composer3")
    assert {d["kind"] for d in docs} == {"ConfigMap"}  # Composer owns RBAC, SAs and policies there
    assert {d["metadata"]["namespace"] for d in docs} == {PRESETS["composer3"]["namespace"]}
    assert PRESETS["composer3"]["namespace"] == "composer-user-workloads"


# Pod-spec keys Composer 3 ignores or rejects for user workloads (no affinity or node placement).
COMPOSER3_FORBIDDEN_KEYS = {
    "affinity",
    "nodeSelector",
    "nodeName",
    "tolerations",
    "hostNetwork",
    "initContainers",
}
COMPOSER3_FORBIDDEN_KINDS = {
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "NetworkPolicy",
}


def keys_in(node: object) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in keys_in(v)}
    if isinstance(node, list):
        return {k for v in node for k in keys_in(v)}
    return set()


def test_manifests_composer3_asks_for_nothing_composer_forbids() -> None:
    docs = build(K8S / "overlays" / "composer3")
    assert docs, "composer3 overlay renders nothing"
    for doc in docs:
        assert doc["kind"] not in COMPOSER3_FORBIDDEN_KINDS, doc["kind"]
        found = keys_in(doc) & COMPOSER3_FORBIDDEN_KEYS
        assert not found, f"{doc['kind']}/{doc['metadata']['name']}: {sorted(found)}"


def test_manifests_composer2_limits_fit_autopilot_rules() -> None:
    (limit_range,) = by_kind(build(K8S / "overlays" / "composer2"), "LimitRange")
    (limits,) = limit_range["spec"]["limits"]
    for key in ("defaultRequest", "default"):
        cpu = parse_cpu(limits[key]["cpu"])
        gib = Decimal(parse_bytes(limits[key]["memory"])) / (1 << 30)
        assert cpu >= Decimal("0.25")
        assert gib >= Decimal("0.5")
        assert Decimal(1) <= gib / cpu <= Decimal("6.5"), f"{key}: {gib} GiB per {cpu} vCPU"


def test_manifests_network_policy_selects_the_pods_the_operator_labels() -> None:
    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.resolve import resolve
    from script_runner.discover.spec import ScriptObject
    from script_runner.run.pod_spec import pod_labels

    (policy,) = by_kind(build(K8S / "overlays" / "gke"), "NetworkPolicy")
    settings = RunnerSettings(preset="gke", source="gs://b/data/", image="runner:1")
    obj = ScriptObject(uri="gs://b/data/a.sh", path="a.sh", generation="1", md5="x", size=1)
    labels = pod_labels(resolve(obj, parse_directives("a.sh", "#!/bin/bash\n"), settings), settings)
    for key, value in policy["spec"]["podSelector"]["matchLabels"].items():
        assert labels.get(key) == value


def test_manifests_validate_script_passes_and_catches_unknown_fields(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    ok = subprocess.run(["bash", str(K8S / "validate.sh")], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "overlays/composer3 ok" in ok.stdout

    broken = tmp_path / "k8s"
    shutil.copytree(K8S, broken)
    quota = broken / "base" / "resource-quota.yaml"
    quota.write_text(quota.read_text().replace("spec:\n", "spec:\n  scopeSelectorr: {}\n"))
    bad = subprocess.run(["bash", str(broken / "validate.sh")], capture_output=True, text=True, env=env)
    assert bad.returncode == 1
    assert "base does not validate" in bad.stderr


def test_manifests_gke_limits_match_the_runner_defaults_and_caps() -> None:
    from script_runner.config.settings import RunnerSettings

    defaults = RunnerSettings()
    (limit_range,) = by_kind(build(K8S / "overlays" / "gke"), "LimitRange")
    (limits,) = limit_range["spec"]["limits"]
    assert parse_cpu(limits["defaultRequest"]["cpu"]) == parse_cpu(defaults.cpu)
    assert parse_bytes(limits["defaultRequest"]["memory"]) == parse_bytes(defaults.memory)
    assert parse_cpu(limits["max"]["cpu"]) == parse_cpu(defaults.max_cpu)
    assert parse_bytes(limits["max"]["memory"]) == parse_bytes(defaults.max_memory)
    assert parse_bytes(limits["max"]["ephemeral-storage"]) == parse_bytes(defaults.max_ephemeral_storage)


# What the script pods may reach: (destination CIDR or "any", protocol, port). The metadata server entries
# are what Workload Identity needs under a NetworkPolicy (GKE: 169.254.169.254:80, and 169.254.169.252:988
# where the gke-metadata-server listens without Dataplane V2); nothing else may appear unnoticed.
METADATA_SERVER = {("169.254.169.254/32", "TCP", 80), ("169.254.169.252/32", "TCP", 988)}
EXPECTED_EGRESS = {("any", "UDP", 53), ("any", "TCP", 53), ("any", "TCP", 443), ("any", "TCP", 5432)}


def egress_allowed(policy: dict[str, Any]) -> set[tuple[str, str, int]]:
    allowed = set()
    for rule in policy["spec"].get("egress") or []:
        targets = [peer["ipBlock"]["cidr"] for peer in rule.get("to") or []] or ["any"]
        for peer in rule.get("to") or []:
            assert set(peer) == {"ipBlock"}, peer  # no pod or namespace peers
            assert not peer["ipBlock"].get("except"), peer
        for target in targets:
            for port in rule.get("ports") or []:
                allowed.add((target, port.get("protocol", "TCP"), int(port["port"])))
    return allowed


@pytest.mark.parametrize("overlay", [*OVERLAYS, "base"])
def test_manifests_network_policy_lets_pods_reach_the_metadata_server_and_nothing_new(overlay: str) -> None:
    path = K8S / "base" if overlay == "base" else K8S / "overlays" / overlay
    policies = by_kind(build(path), "NetworkPolicy")
    if overlay == "composer3":
        assert policies == []  # Composer 3 owns the namespace's policies
        return
    (policy,) = policies
    assert "Egress" in policy["spec"]["policyTypes"]
    assert egress_allowed(policy) == EXPECTED_EGRESS | METADATA_SERVER


def _setup_identity(*args: str) -> subprocess.CompletedProcess[str]:
    # A dry run calls no gcloud or kubectl; it writes the generated overlay (a local file) and prints the rest.
    return subprocess.run(
        ["bash", str(K8S / "setup-identity.sh"), "--project", "my-proj", "--bucket", "gs://env-bkt", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


@pytest.mark.parametrize("overlay", ["composer2", "gke"])
def test_manifests_setup_identity_fills_the_placeholders_in_what_is_applied(
    overlay: str, tmp_path: Path
) -> None:
    # setup-identity.sh annotated the live ServiceAccount, and the next `kubectl apply -k k8s/overlays/...`
    # wrote script-runner@PROJECT_ID back: what setup applies (and the user re-applies) must carry the values.
    workers = "composer-2-16-1-airflow-2-11-1-abcd1234"
    out = tmp_path / "applied"
    extra = ("--workers-namespace", workers) if overlay == "composer2" else ()
    args = ("--overlay", overlay, "--identity", "loader", *extra, "--overlay-dir", str(out), "--dry-run")
    done = _setup_identity(*args)
    assert f"kubectl apply -k {out}" in done.stdout
    assert "kubectl annotate" not in done.stdout  # nothing the next apply could revert
    rendered = subprocess.run(["kubectl", "kustomize", str(out)], capture_output=True, text=True, check=True)
    assert "PROJECT_ID" not in rendered.stdout
    assert "REPLACE" not in rendered.stdout
    docs = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    accounts = {sa["metadata"]["name"]: sa for sa in by_kind(docs, "ServiceAccount")}
    for name in ("script-runner", "loader"):
        sa = accounts[name]
        assert (
            sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
            == f"{name}@my-proj.iam.gserviceaccount.com"
        )
        assert sa["metadata"]["namespace"] == "script-runner"
        assert sa["automountServiceAccountToken"] is False
    (binding,) = by_kind(docs, "RoleBinding")
    if overlay == "composer2":
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "default", "namespace": workers}]
    _setup_identity(*args)  # a re-run writes the same overlay
    again = subprocess.run(["kubectl", "kustomize", str(out)], capture_output=True, text=True, check=True)
    assert again.stdout == rendered.stdout


def test_manifests_setup_identity_composer2_needs_the_workers_namespace(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            "bash",
            str(K8S / "setup-identity.sh"),
            "--overlay",
            "composer2",
            "--project",
            "my-proj",
            "--bucket",
            "b-1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 64
    assert "--workers-namespace" in done.stderr
