"""Pods get their identity from the double's metadata server (GCE metadata API subset), not from host files."""

from __future__ import annotations

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
    state = tmp_path_factory.mktemp("kube")
    with running_double(state, "--identity-dir", str(identities), "--identity-via", "metadata") as started:
        yield started


def run_pod(api: client.CoreV1Api, name: str, account: str, command: list[str]) -> str:
    body = pod(name, command)
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
