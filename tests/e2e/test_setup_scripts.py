"""``k8s/setup-upload.sh`` and ``k8s/setup-identity.sh`` end to end through the real gcloud.

gcloud (an access-token file, no login, no ADC) talks to ``tests/setup_apis_double.py`` for Cloud Storage
(bucket, bucket IAM, notifications, service agent) and IAM (service accounts and their policies), and through
it to this module's own Pub/Sub emulator (topics, subscriptions; their IAM policies kept by the double, which
the emulator leaves unimplemented). The double refuses what the real APIs refuse (AlreadyExists for an
account, a notification on a missing topic) and, like GCS, accepts a duplicate notification: only the
script's own check keeps a re-run from adding one.

``kubectl`` is a stand-in on PATH that renders ``apply -k DIR`` with the real ``kubectl kustomize`` and
records it: the Kubernetes API double serves pods and namespaces only, not the ServiceAccounts, Roles and
RoleBindings the overlays hold, so the apply itself is not run against an API server here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import pubsub as local_pubsub
from tests.composer_double import GCLOUD, PROJECT
from tests.conftest import free_port
from tests.setup_apis_double import AGENT, SetupApis

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ya29.local-setup-token"
BUCKET = "setup-env-bucket"
ENV_SA = f"composer-env@{PROJECT}.iam.gserviceaccount.com"
KUBECTL = """#!/usr/bin/env bash
# A stand-in for kubectl: `apply -k DIR` renders DIR with the real kubectl kustomize and records it.
set -Eeuo pipefail
[[ "${1-} ${2-}" == "apply -k" ]] || { echo "kubectl stand-in: only apply -k, not: $*" >&2; exit 2; }
/usr/bin/kubectl kustomize "$3" >"${KUBECTL_RENDERED}/$(date +%s%N).yaml"
echo "applied $3"
"""

pytestmark = pytest.mark.skipif(not local_pubsub.installed(), reason="the Pub/Sub emulator is not installed")


@pytest.fixture(scope="module")
def pubsub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's Pub/Sub emulator (gcloud's, Java): its base URL."""
    port = free_port()
    log = (tmp_path_factory.mktemp("pubsub") / "emulator.log").open("wb")
    cmd = local_pubsub.command(port, tmp_path_factory.mktemp("pubsub-data"))
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not local_pubsub.ready(port):
        if time.monotonic() > deadline or proc.poll() is not None:
            os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError(f"the Pub/Sub emulator did not start: {log.name}")
        time.sleep(0.5)
    yield f"http://{local_pubsub.host(port)}"
    os.killpg(proc.pid, signal.SIGTERM)  # gcloud's wrapper and its java child share the group
    proc.wait(timeout=20)


@pytest.fixture
def apis(pubsub: str) -> Iterator[SetupApis]:
    double = SetupApis(token=TOKEN, pubsub=pubsub, buckets=[BUCKET])
    yield double
    double.stop()


@pytest.fixture
def shell(apis: SetupApis, tmp_path: Path) -> dict[str, str]:
    """A user's shell after ``gcloud auth login`` (a token file), pointed at the double; kubectl the stand-in."""
    (tmp_path / "token").write_text(TOKEN)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    (tmp_path / "rendered").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
    for key in ("GOOGLE_APPLICATION_CREDENTIALS", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"):
        env.pop(key, None)  # the session stack's, when make e2e started it: only the double is reached
    env.update(
        {
            "PATH": f"{bin_dir}:{Path(GCLOUD).parent}:{env.get('PATH', '')}",
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(tmp_path / "token"),
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{apis.url}/storage/v1/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM": f"{apis.url}/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": f"{apis.url}/",
            "KUBECTL_RENDERED": str(tmp_path / "rendered"),
        }
    )
    return env


def _run(env: dict[str, str], *argv: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), env=env, input=script, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT
    )


def _emulator(pubsub: str, name: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"{pubsub}/v1/projects/{PROJECT}/{name}", timeout=10) as resp:
        return dict(json.loads(resp.read()))


def _members(policy: dict[str, Any], role: str) -> list[str]:
    return [m for b in policy.get("bindings", []) if b["role"] == role for m in b["members"]]


UPLOAD = ("bash", "k8s/setup-upload.sh", "--project", PROJECT, "--bucket", f"gs://{BUCKET}")


def test_setup_upload_first_run_creates_and_a_second_run_keeps_one_notification(
    apis: SetupApis, pubsub: str, shell: dict[str, str]
) -> None:
    airflow = f"airflow@{PROJECT}.iam.gserviceaccount.com"
    first = _run(shell, *UPLOAD, "--airflow-sa", airflow)
    assert first.returncode == 0, first.stderr
    topic = f"projects/{PROJECT}/topics/script-runner-uploads"
    assert _emulator(pubsub, "subscriptions/script-runner-uploads")["topic"] == topic
    [note] = apis.notifications[BUCKET]
    assert note["topic"] == f"//pubsub.googleapis.com/{topic}"
    assert note["object_name_prefix"] == "data/"
    assert note["event_types"] == ["OBJECT_FINALIZE"]
    assert _members(apis.pubsub_policies[topic], "roles/pubsub.publisher") == [f"serviceAccount:{AGENT}"]
    subscription = f"projects/{PROJECT}/subscriptions/script-runner-uploads"
    assert _members(apis.pubsub_policies[subscription], "roles/pubsub.subscriber") == [
        f"serviceAccount:{airflow}"
    ]

    second = _run(shell, *UPLOAD, "--airflow-sa", airflow)
    assert second.returncode == 0, second.stderr
    assert "exists: kept" in second.stdout
    assert len(apis.notifications[BUCKET]) == 1  # GCS would have taken a second one
    assert "already exists" not in second.stderr.lower()
    assert _members(apis.pubsub_policies[topic], "roles/pubsub.publisher") == [f"serviceAccount:{AGENT}"]


def test_setup_upload_dry_run_prints_a_script_that_runs_twice_without_duplicates(
    apis: SetupApis, pubsub: str, shell: dict[str, str]
) -> None:
    args = ("--topic", "dry-uploads", "--subscription", "dry-uploads", "--dry-run")
    dry = _run(shell, *UPLOAD, *args)
    assert dry.returncode == 0, dry.stderr
    assert apis.notifications[BUCKET] == []  # the dry run changed nothing
    for attempt in (1, 2):
        ran = _run(shell, "bash", "-Eeuo", "pipefail", script=dry.stdout)
        assert ran.returncode == 0, f"run {attempt}: {ran.stderr}"
    assert _emulator(pubsub, "subscriptions/dry-uploads")["ackDeadlineSeconds"] == 120
    assert [n["topic"].rsplit("/", 1)[1] for n in apis.notifications[BUCKET]] == ["dry-uploads"]


IDENTITY = ("bash", "k8s/setup-identity.sh", "--project", PROJECT, "--bucket", f"gs://{BUCKET}")


def test_setup_identity_composer3_first_run_creates_a_second_run_changes_nothing(
    apis: SetupApis, shell: dict[str, str]
) -> None:
    args = (
        "--overlay",
        "composer3",
        "--environment-sa",
        ENV_SA,
        "--identity",
        "etl-loader",
        "--airflow-sa",
        ENV_SA,
    )
    first = _run(shell, *IDENTITY, *args)
    assert first.returncode == 0, first.stderr
    email = f"etl-loader@{PROJECT}.iam.gserviceaccount.com"
    assert set(apis.accounts) == {email}
    creator = _members(apis.account_policies[email], "roles/iam.serviceAccountTokenCreator")
    assert creator == [f"serviceAccount:{ENV_SA}"]
    bindings = apis.policies[BUCKET]["bindings"]
    titles = sorted(b["condition"]["title"] for b in bindings)
    assert titles == sorted(
        [
            "script-runner-read-scripts",
            "script-runner-pod-state",
            "script-runner-airflow-read",
            "script-runner-airflow-state",
        ]
    )

    second = _run(shell, *IDENTITY, *args)
    assert second.returncode == 0, second.stderr
    assert "service-accounts create" not in second.stderr  # described, kept
    assert apis.policies[BUCKET]["bindings"] == bindings
    # The double refuses a second create as IAM does: the script's describe is what keeps it away.
    again = _run(shell, GCLOUD, "iam", "service-accounts", "create", "etl-loader", "--project", PROJECT)
    assert again.returncode != 0
    assert "already exists" in again.stderr


def test_setup_identity_composer2_dry_run_runs_after_kubectl_apply_and_again(
    apis: SetupApis, shell: dict[str, str], tmp_path: Path
) -> None:
    overlay = tmp_path / "overlay"
    workers = "composer-2-16-1-airflow-2-11-1-abcd1234"
    args: tuple[str, ...]
    args = ("--overlay", "composer2", "--workers-namespace", workers, "--identity", "etl-loader")
    args = (*args, "--overlay-dir", str(overlay))
    # The first step deploy prints applies the overlay; then the printed script, twice.
    assert _run(shell, "kubectl", "apply", "-k", str(ROOT / "k8s" / "overlays" / "composer2")).returncode == 0
    dry = _run(shell, *IDENTITY, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert apis.accounts == {}  # the dry run created nothing
    assert "kubectl create" not in dry.stdout
    for attempt in (1, 2):
        ran = _run(shell, "bash", "-Eeuo", "pipefail", script=dry.stdout)
        assert ran.returncode == 0, f"run {attempt}: {ran.stderr}"
    assert set(apis.accounts) == {
        f"{n}@{PROJECT}.iam.gserviceaccount.com" for n in ("script-runner", "etl-loader")
    }
    wi = apis.account_policies[f"etl-loader@{PROJECT}.iam.gserviceaccount.com"]
    assert _members(wi, "roles/iam.workloadIdentityUser") == [
        f"serviceAccount:{PROJECT}.svc.id.goog[script-runner/etl-loader]"
    ]
    rendered = sorted((tmp_path / "rendered").iterdir())[-1].read_text()
    assert f"iam.gke.io/gcp-service-account: etl-loader@{PROJECT}.iam.gserviceaccount.com" in rendered
