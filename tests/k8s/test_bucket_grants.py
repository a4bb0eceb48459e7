"""The bucket grants of k8s/README and k8s/setup-identity.sh, run by the real gcloud against a local bucket IAM API.

The bucket's policy already has a conditional binding (as soon as setup-identity.sh ran once, or any other
tool used conditions): gcloud then refuses an unconditional binding without a prompt. Every grant we print
must go through non-interactively and read only the scripts (``data/``), not the whole bucket.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bucket_iam_double import BucketIam

ROOT = Path(__file__).resolve().parents[2]
GCLOUD = shutil.which("gcloud")
BUCKET = "env-bkt"
EXISTING = {
    "role": "roles/storage.objectUser",
    "members": ["serviceAccount:other@my-proj.iam.gserviceaccount.com"],
    "condition": {
        "title": "other",
        "expression": 'resource.name.startsWith("projects/_/buckets/env-bkt/objects/x/")',
    },
}
READ_SCRIPTS = (
    'resource.type == "storage.googleapis.com/Bucket" || '
    'resource.name.startsWith("projects/_/buckets/env-bkt/objects/data/")'
)

pytestmark = pytest.mark.skipif(GCLOUD is None, reason="the Google Cloud CLI is not installed")


@pytest.fixture
def iam(tmp_path: Path) -> Iterator[tuple[BucketIam, dict[str, str]]]:
    double = BucketIam({BUCKET: {"version": 3, "etag": "CAE=", "bindings": [dict(EXISTING)]}})
    (tmp_path / "token").write_text("ya29.local")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
    env |= {
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(tmp_path / "token"),
        "CLOUDSDK_CORE_PROJECT": "my-proj",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",  # non-interactive, as in a script or CI
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{double.url}/storage/v1/",
    }
    yield double, env
    double.stop()


def _bindings(double: BucketIam, member: str, role: str) -> list[dict[str, Any]]:
    return [b for b in double.policies[BUCKET]["bindings"] if b["role"] == role and member in b["members"]]


def test_bucket_grants_readme_commands_run_non_interactively_on_a_conditional_policy(
    iam: tuple[BucketIam, dict[str, str]], tmp_path: Path
) -> None:
    double, env = iam
    readme = (ROOT / "k8s" / "README.md").read_text()
    block = next(b for b in re.findall(r"```\n(.*?)```", readme, re.S) if "add-iam-policy-binding" in b)
    script = block.replace("PROJECT_ID", "my-proj").replace("BUCKET", BUCKET)
    done = subprocess.run(
        ["bash", "-c", f"set -e\n{script}"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-600:]
    member = "serviceAccount:script-runner@my-proj.iam.gserviceaccount.com"
    (viewer,) = _bindings(double, member, "roles/storage.objectViewer")
    assert viewer["condition"]["expression"] == READ_SCRIPTS  # the scripts, not the whole bucket
    (user,) = _bindings(double, member, "roles/storage.objectUser")
    assert "objects/script-runner/state/" in user["condition"]["expression"]
    assert EXISTING in double.policies[BUCKET]["bindings"]


def test_bucket_grants_setup_identity_gke_gives_the_airflow_account_read_on_the_scripts(
    iam: tuple[BucketIam, dict[str, str]], tmp_path: Path
) -> None:
    double, env = iam
    dry = subprocess.run(
        [
            "bash",
            str(ROOT / "k8s" / "setup-identity.sh"),
            "--overlay",
            "gke",
            "--project",
            "my-proj",
            "--bucket",
            f"gs://{BUCKET}",
            "--airflow-sa",
            "airflow@my-proj.iam.gserviceaccount.com",
            "--overlay-dir",
            str(tmp_path / "overlay"),
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    grants = [line for line in dry.stdout.splitlines() if line.startswith("gcloud storage buckets add-iam")]
    done = subprocess.run(
        ["bash", "-c", "set -e\n" + "\n".join(grants)], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-600:]
    airflow = "serviceAccount:airflow@my-proj.iam.gserviceaccount.com"
    reads = [b["condition"]["expression"] for b in _bindings(double, airflow, "roles/storage.objectViewer")]
    assert READ_SCRIPTS in reads
    pods = _bindings(
        double, "serviceAccount:script-runner@my-proj.iam.gserviceaccount.com", "roles/storage.objectViewer"
    )
    assert [b["condition"]["expression"] for b in pods] == [READ_SCRIPTS]
