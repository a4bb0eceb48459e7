"""gcloud, gsutil and bq in a pod authenticate through the local metadata server, as on GKE.

The real parts: the stack's GCS emulator and IAM front (http and https), the Kubernetes double with the
stack's identities, the pod environment the stack gives every pod, and the Cloud SDK's own tools.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import config, pod_env, processes, services
from tests.conftest import free_port
from tests.unit.local.kube_double_process import running_double
from tests.unit.local.test_kube_double import NS, pod, wait_phase

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("gcloud", "gsutil", "bq")), reason="Cloud SDK not installed"
    ),
]

TOOLS = """
set -u
echo hi >"$TMPDIR/x.txt"
echo "account=$(gcloud auth list --filter=status:ACTIVE --format='value(account)' 2>/dev/null)"
gcloud storage cp -q "$TMPDIR/x.txt" "gs://composer-bucket-out/tools/$1-gcloud.txt" >/dev/null 2>"$TMPDIR/gcloud.err"
echo "gcloud-put=$?"; sed "s/^/gcloud-err: /" "$TMPDIR/gcloud.err" | tail -5
timeout 60 gsutil -q -o Boto:num_retries=1 cp "$TMPDIR/x.txt" "gs://composer-bucket-out/tools/$1-gsutil.txt" \
  >/dev/null 2>&1
echo "gsutil-put=$?"
timeout 60 gsutil -q -o Boto:num_retries=1 cp "$TMPDIR/x.txt" \
  "gs://composer-bucket/script-runner/cache/$1-forged.json" >/dev/null 2>&1
echo "gsutil-cache=$?"
timeout 60 bq --api="$BQ_API" show --format=prettyjson test-project:ds >/dev/null 2>&1
echo "bq=$?"
"""


class _BigQueryStandIn(http.server.BaseHTTPRequestHandler):
    """Records the Authorization header bq sends and answers 404 (bq's discovery call)."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization") or "")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def stack_slice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The stack's GCS emulator and IAM front on free ports, its identities, and the double using them."""
    run = tmp_path_factory.mktemp("run")
    ports = config.Ports(gcs_http=free_port(), gcs_https=free_port(), iam=free_port(), iam_https=free_port())
    bq = http.server.HTTPServer(("127.0.0.1", 0), _BigQueryStandIn)
    threading.Thread(target=bq.serve_forever, daemon=True).start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "RUN", run)
        patch.setattr(config, "LOGS", run / "logs")
        patch.setattr(config, "PIDS", run / "pids")
        patch.setattr(config, "PORTS", ports)
        try:
            services.start_gcs()
            services.start_iam()
            files = pod_env.pod_files()
            identities = ["--identity-dir", str(run / "iam" / "tokens"), "--mount", f"{files}:{files}"]
            with running_double(run / "kube", *identities) as double:
                yield {
                    **double,
                    "env": {**pod_env.pod_env(), "BQ_API": f"http://127.0.0.1:{bq.server_port}"},
                    "gcs": config.gcs_url(),
                    "bq_seen": _BigQueryStandIn.seen,
                    "tokens": run / "iam" / "tokens",
                }
        finally:
            bq.shutdown()
            processes.stop("iam")
            processes.stop("gcs")


IMPERSONATING = """
set -u
echo hi >"$TMPDIR/x.txt"
gcloud storage cp -q "$TMPDIR/x.txt" "gs://composer-bucket/team-a/$1-gcloud.txt" >/dev/null 2>"$TMPDIR/g.err"
echo "gcloud-own=$?"; sed "s/^/gcloud-err: /" "$TMPDIR/g.err" | tail -5
gcloud storage cp -q "$TMPDIR/x.txt" "gs://composer-bucket-out/tools/$1-gcloud.txt" >/dev/null 2>&1
echo "gcloud-other=$?"
timeout 60 gsutil -q -o Boto:num_retries=1 cp "$TMPDIR/x.txt" "gs://composer-bucket/team-a/$1-gsutil.txt" \
  >"$TMPDIR/s.err" 2>&1
echo "gsutil-own=$?"; sed "s/^/gsutil-err: /" "$TMPDIR/s.err" | tail -5
timeout 60 gsutil -q -o Boto:num_retries=1 cp "$TMPDIR/x.txt" "gs://composer-bucket-out/tools/$1-gsutil.txt" \
  >/dev/null 2>&1
echo "gsutil-other=$?"
timeout 60 bq --api="$BQ_API" show --format=prettyjson test-project:ds >/dev/null 2>&1
echo "bq=$?"
"""


def _run_tools(
    double: dict[str, Any],
    name: str,
    account: str | None,
    *,
    script: str = TOOLS,
    env: dict[str, str] | None = None,
) -> dict[str, str]:
    api = double["api"]
    body = pod(name, ["bash", "-c", script, "tools", name])
    merged = {**double["env"], **(env or {})}
    body["spec"]["containers"][0]["env"] = [{"name": k, "value": v} for k, v in merged.items()]
    if account:
        body["spec"]["serviceAccountName"] = account
    api.create_namespaced_pod(NS, body)
    assert wait_phase(api, name, {"Succeeded", "Failed"}, timeout=180).status.phase == "Succeeded"
    out = api.read_namespaced_pod_log(name, NS, _preload_content=False).data.decode()
    api.delete_namespaced_pod(name, NS, grace_period_seconds=0)
    found = dict(line.split("=", 1) for line in out.splitlines() if "=" in line and " " not in line)
    return {**found, "_log": out}


def _exists(gcs: str, bucket: str, name: str) -> bool:
    url = f"{gcs}/storage/v1/b/{bucket}/o/{name.replace('/', '%2F')}"
    try:
        urllib.request.urlopen(url, timeout=10).close()
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return False
        raise
    return True


def test_pod_tools_without_a_service_account_act_as_the_environments_identity(
    stack_slice: dict[str, Any],
) -> None:
    seen_before = len(stack_slice["bq_seen"])
    out = _run_tools(stack_slice, "tools-default", None)
    assert out["account"] == "composer-env@test-project.iam.gserviceaccount.com"
    assert out["gcloud-put"] == "0", out["_log"]
    assert out["gsutil-put"] == "0", out["_log"]
    assert out["gsutil-cache"] != "0"  # the IAM front refuses the worker-only prefix: gsutil went through it
    assert _exists(stack_slice["gcs"], "composer-bucket-out", "tools/tools-default-gcloud.txt")
    assert _exists(stack_slice["gcs"], "composer-bucket-out", "tools/tools-default-gsutil.txt")
    assert not _exists(stack_slice["gcs"], "composer-bucket", "script-runner/cache/tools-default-forged.json")
    token = (stack_slice["tokens"] / "default.token").read_text()
    assert f"Bearer {token}" in stack_slice["bq_seen"][seen_before:]


def test_pod_tools_act_as_the_pods_own_service_account(stack_slice: dict[str, Any]) -> None:
    seen_before = len(stack_slice["bq_seen"])
    out = _run_tools(stack_slice, "tools-reader", "reader")
    assert out["account"] == "reader@test-project.iam.gserviceaccount.com"
    assert out["gcloud-put"] != "0"  # reader may not write the out bucket
    assert out["gsutil-put"] != "0"
    assert not _exists(stack_slice["gcs"], "composer-bucket-out", "tools/tools-reader-gsutil.txt")
    token = (stack_slice["tokens"] / "reader.token").read_text()
    assert f"Bearer {token}" in stack_slice["bq_seen"][seen_before:]


def test_pod_tools_impersonate_the_scripts_google_service_account(stack_slice: dict[str, Any]) -> None:
    """What the entrypoint gives an impersonating script: the pod runs as the environment's identity
    (default), and CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT makes gcloud, gsutil and bq mint etl-a's tokens
    through the (emulated) IAM Credentials API: etl-a may write team-a/, not the out bucket the
    environment's identity may write."""
    seen_before = len(stack_slice["bq_seen"])
    env = {"CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT": "etl-a@test-project.iam.gserviceaccount.com"}
    out = _run_tools(stack_slice, "tools-imp", None, script=IMPERSONATING, env=env)
    assert out["gcloud-own"] == "0", out["_log"]
    assert out["gcloud-other"] != "0", out["_log"]
    assert out["gsutil-own"] == "0", out["_log"]
    assert out["gsutil-other"] != "0", out["_log"]
    assert _exists(stack_slice["gcs"], "composer-bucket", "team-a/tools-imp-gcloud.txt")
    assert _exists(stack_slice["gcs"], "composer-bucket", "team-a/tools-imp-gsutil.txt")
    assert not _exists(stack_slice["gcs"], "composer-bucket-out", "tools/tools-imp-gcloud.txt")
    assert any(h.startswith("Bearer local-minted-etl-a-") for h in stack_slice["bq_seen"][seen_before:])


def test_pod_env_sends_every_gcs_client_through_the_iam_front(stack_slice: dict[str, Any]) -> None:
    env = stack_slice["env"]
    assert env["STORAGE_EMULATOR_HOST"] == config.iam_url()
    assert env["CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE"].startswith(config.iam_url())
    assert "CLOUDSDK_AUTH_DISABLE_CREDENTIALS" not in env
    boto = Path(env["BOTO_CONFIG"]).read_text()
    assert f"gs_json_port = {config.PORTS.iam_https}" in boto
    files = sorted(p.name for p in Path(env["BOTO_CONFIG"]).parent.iterdir())
    assert files == ["boto", "ca.pem"]  # no key, no token, no object data where pods can see it
    assert json.dumps(env).count(str(config.RUN / "iam")) == 0
