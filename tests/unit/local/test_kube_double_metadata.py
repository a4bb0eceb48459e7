"""Pods get their identity from the double's metadata server (GCE metadata API subset), not from host files."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.unit.local.kube_double_process import running_double
from tests.unit.local.test_kube_double import NS, pod, wait_phase

TOKEN_URL = "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/token"
PROBE = f"""
env | grep -E '^(RUNNER_ACCESS_TOKEN_FILE|RUNNER_IDENTITY|CLOUDSDK_AUTH_ACCESS_TOKEN_FILE)=' || echo no-token-env
echo "host=$GCE_METADATA_HOST root=$GCE_METADATA_ROOT"
curl -s -o /dev/null -w 'no-header=%{{http_code}}\\n' "{TOKEN_URL}"
curl -s -H 'Metadata-Flavor: Google' -w '\\ntoken=%{{http_code}}\\n' "{TOKEN_URL}"
curl -s -H 'Metadata-Flavor: Google' -w '\\nemail=%{{http_code}}\\n' \
  "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/email"
"""


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    identities = tmp_path_factory.mktemp("identities")
    (identities / "loader.token").write_text("tok-loader\n")
    (identities / "loader.email").write_text("loader@p.iam.gserviceaccount.com\n")
    (identities / "default.token").write_text("tok-default\n")
    (identities / "default.email").write_text("env@p.iam.gserviceaccount.com\n")
    state = tmp_path_factory.mktemp("kube")
    with running_double(state, "--identity-dir", str(identities)) as started:
        yield started


def run_pod(api: client.CoreV1Api, name: str, account: str | None, command: list[str]) -> str:
    body = pod(name, command)
    if account is not None:
        body["spec"]["serviceAccountName"] = account
    api.create_namespaced_pod(NS, body)
    assert wait_phase(api, name, {"Succeeded", "Failed"}).status.phase == "Succeeded"
    raw = api.read_namespaced_pod_log(name, NS, _preload_content=False)
    api.delete_namespaced_pod(name, NS, grace_period_seconds=0)
    return str(raw.data.decode())


def test_metadata_server_a_pod_gets_its_accounts_token_from_the_metadata_server_and_no_token_file(
    double: dict[str, Any],
) -> None:
    out = run_pod(double["api"], "md-loader", "loader", ["bash", "-c", PROBE])
    assert "no-token-env" in out
    assert "host=127.77." in out
    assert "no-header=403" in out
    assert '{"access_token": "tok-loader", "expires_in": 3599, "token_type": "Bearer"}\ntoken=200' in out
    assert "loader@p.iam.gserviceaccount.com\nemail=200" in out


def test_metadata_server_a_pod_whose_account_has_no_identity_gets_no_token(double: dict[str, Any]) -> None:
    out = run_pod(double["api"], "md-nobody", "nobody", ["bash", "-c", PROBE])
    assert "token=404" in out


CLIENT_PATHS = [
    "project/numeric-project-id",  # gcloud's "on GCE" probe: digits
    "project/project-id",
    "instance/service-accounts",  # gsutil's listing, without the slash
    "instance/service-accounts/",
    "instance/service-accounts/default/scopes",  # gsutil
    "instance/service-accounts/loader@p.iam.gserviceaccount.com/token",  # google-auth, by email
    "instance/service-accounts/default/?recursive=true",
    "instance/service-accounts/other@p.iam.gserviceaccount.com/token",
    "instance/zone",
    "universe/universe-domain",
]


def test_metadata_server_answers_the_paths_gcloud_gsutil_and_google_auth_read(double: dict[str, Any]) -> None:
    script = "".join(
        f"printf '@@{path}\\n'; curl -s -H 'Metadata-Flavor: Google' -w '\\n=%{{http_code}}' "
        f'"http://$GCE_METADATA_HOST/computeMetadata/v1/{path}"; echo\n'
        for path in CLIENT_PATHS
    )
    out = run_pod(double["api"], "md-paths", "loader", ["bash", "-c", script])
    answers = {}
    for chunk in out.split("@@")[1:]:
        path, _, rest = chunk.partition("\n")
        body, _, code = rest.rstrip("\n").rpartition("\n=")
        answers[path] = (code, body.strip())
    listing = ("200", "default/\nloader@p.iam.gserviceaccount.com/")
    assert answers["project/numeric-project-id"] == ("200", "123456789012")
    assert answers["project/project-id"] == ("200", "test-project")
    assert answers["instance/service-accounts"] == listing
    assert answers["instance/service-accounts/"] == listing
    assert answers["instance/service-accounts/default/scopes"] == (
        "200",
        "https://www.googleapis.com/auth/cloud-platform",
    )
    code, body = answers["instance/service-accounts/loader@p.iam.gserviceaccount.com/token"]
    assert (code, json.loads(body)["access_token"]) == ("200", "tok-loader")
    code, body = answers["instance/service-accounts/default/?recursive=true"]
    assert (code, json.loads(body)["email"]) == ("200", "loader@p.iam.gserviceaccount.com")
    assert answers["instance/service-accounts/other@p.iam.gserviceaccount.com/token"][0] == "404"
    assert answers["instance/zone"] == ("200", "projects/123456789012/zones/local-a")
    assert answers["universe/universe-domain"] == ("200", "googleapis.com")


def test_metadata_server_a_pod_without_a_service_account_gets_the_default_accounts_identity(
    double: dict[str, Any],
) -> None:
    out = run_pod(double["api"], "md-default", None, ["bash", "-c", PROBE])
    assert "no-token-env" in out
    assert '"access_token": "tok-default"' in out
    assert "env@p.iam.gserviceaccount.com\nemail=200" in out


def test_metadata_server_a_pod_sees_no_storage_endpoint_its_spec_does_not_give(
    double: dict[str, Any],
) -> None:
    """The node adds the metadata server's address and nothing else: no GCS endpoint, no credentials."""
    probe = "env | grep -E '^(STORAGE_EMULATOR_HOST|CLOUDSDK_|BOTO_)' || echo none-from-the-node"
    out = run_pod(double["api"], "md-env", "loader", ["bash", "-c", probe])
    assert out.strip() == "none-from-the-node"


def test_metadata_server_google_auth_reads_the_token_through_the_standard_overrides(
    double: dict[str, Any],
) -> None:
    code = (
        "import google.auth.compute_engine as ce, google.auth.transport.requests as r\n"
        "c = ce.Credentials()\n"
        "c.refresh(r.Request())\n"
        "print('google-auth', c.token, c.service_account_email)\n"
    )
    out = run_pod(double["api"], "md-google-auth", "loader", [sys.executable, "-c", code])
    assert "google-auth tok-loader loader@p.iam.gserviceaccount.com" in out


def test_metadata_server_the_pods_listener_closes_when_the_pod_is_gone(double: dict[str, Any]) -> None:
    api = double["api"]
    body = pod("md-short", ["bash", "-c", 'echo "$GCE_METADATA_HOST"'])
    body["spec"]["serviceAccountName"] = "loader"
    api.create_namespaced_pod(NS, body)
    wait_phase(api, "md-short", {"Succeeded"})
    host = api.read_namespaced_pod_log("md-short", NS, _preload_content=False).data.decode().strip()
    api.delete_namespaced_pod("md-short", NS, grace_period_seconds=0)
    address, port = host.rsplit(":", 1)
    deadline = time.monotonic() + 10
    refused = False
    while not refused and time.monotonic() < deadline:
        try:
            socket.create_connection((address, int(port)), timeout=1).close()
            time.sleep(0.2)
        except OSError:
            refused = True
    assert refused, f"{host} still answers after the pod was deleted"


def test_process_kubelet_gives_each_pod_its_own_tmp_for_env_paths_under_tmp(double: dict[str, Any]) -> None:
    """gcloud's CLOUDSDK_CONFIG=/tmp/gcloud-config is in the pod's /tmp emptyDir, not shared on the host."""
    api = double["api"]
    body = pod("md-tmp", ["bash", "-c", 'echo "$CLOUDSDK_CONFIG"'])
    body["spec"]["containers"][0]["env"] = [{"name": "CLOUDSDK_CONFIG", "value": "/tmp/gcloud-config"}]
    api.create_namespaced_pod(NS, body)
    wait_phase(api, "md-tmp", {"Succeeded"})
    seen = api.read_namespaced_pod_log("md-tmp", NS, _preload_content=False).data.decode().strip()
    api.delete_namespaced_pod("md-tmp", NS, grace_period_seconds=0)
    assert seen.endswith("/tmp/gcloud-config")
    assert not seen.startswith("/tmp/gcloud-config")
