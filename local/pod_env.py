"""What a pod of the local stack sees: the environment every pod gets, and the files written for it.

Pods talk to the emulators instead of the cloud, always through the IAM front, with the token the Kubernetes
double's metadata server hands them; the files are the local CA certificate, gsutil's boto file and the
identities (one token per service account of the IAM policy). Imports :mod:`local.config`; starts nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from typing import TYPE_CHECKING

from local import config

if TYPE_CHECKING:
    from pathlib import Path


def pod_env() -> dict[str, str]:
    """Environment every pod gets locally (SCRIPT_RUNNER_EXTRA_ENV): the emulators instead of the cloud.

    Every GCS client in a pod talks to the IAM front (never to the emulator itself), with the token the
    local metadata server hands the pod for its service account: the runner library (curl), gcloud and bq
    through ``GCE_METADATA_ROOT``/``GCE_METADATA_HOST``, gsutil through the boto file below. The same front
    serves the IAM Credentials API (impersonation) and Secret Manager, named by gcloud's endpoint overrides,
    which the runner library reads too. Nothing here names a credential.
    """
    files = pod_files()
    return {
        "STORAGE_EMULATOR_HOST": config.iam_url(),
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{config.iam_url()}/storage/v1/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS": f"{config.iam_url()}/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER": f"{config.iam_url()}/",
        "CLOUDSDK_CORE_PROJECT": "test-project",
        "CLOUDSDK_CONFIG": "/tmp/gcloud-config",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "BOTO_CONFIG": str(files / "boto"),
        "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE": str(files / "ca.pem"),
        "PGHOST": "127.0.0.1",
        "PGPORT": str(config.PORTS.pg),
        "PGUSER": "demo",
        "PGPASSWORD": "demo",
        "PGDATABASE": "demo",
    }


def pod_files() -> Path:
    """The one host folder pods see besides the SDK: the local CA certificate and gsutil's boto file.

    They stand for what a real image already has (the public CA bundle; gsutil's defaults need no file):
    the emulator's self-signed certificate is not in any bundle, and only a boto file can point gsutil at
    the IAM front. Written by :func:`write_pod_files`; no key, token or object data is in it.
    """
    return config.RUN / "pod-files"


def write_identities(*, fresh: bool = True) -> Path:
    """One token (and email) per service account of the IAM policy: what the metadata server hands pods.

    Each token is random (nothing in it comes from the account's name), so a pod cannot make up another
    account's token; the IAM front reads the same folder (``--tokens``). Read by the Kubernetes double
    (``--identity-dir``) and the IAM front only; no pod sees this folder.

    :param fresh: draw new tokens for every account (a stack start); False keeps the tokens already written
        (the front is up and pods may hold them) and draws only the missing ones.
    """
    tokens = config.RUN / "iam" / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    tokens.chmod(0o700)
    for account, entry in json.loads(config.IAM_POLICY.read_text()).get("identities", {}).items():
        token = tokens / f"{account}.token"
        if fresh or not token.is_file() or not token.read_text().strip():
            _write_private(token, secrets.token_urlsafe(32))
        (tokens / f"{account}.email").write_text(entry.get("email", account))
    return tokens


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by this user only, replacing it whole (no reader sees half)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def write_pod_files() -> Path:
    """The CA certificate and a boto file that sends gsutil to the IAM front's https port (no credentials:
    gsutil takes the pod's token from the metadata server)."""
    files = pod_files()
    files.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config.RUN / "gcs" / "tls" / "cert.pem", files / "ca.pem")
    (files / "boto").write_text(
        f"[Credentials]\ngs_json_host = 127.0.0.1\ngs_json_port = {config.PORTS.iam_https}\n"
        # gsutil's impersonation (CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT) asks IAM Credentials over
        # https: the same front. gsutil spells the port option this way.
        f"gs_iamcredentials_host = 127.0.0.1\ngs_iamcredentails_port = {config.PORTS.iam_https}\n"
        "[Boto]\nnum_retries = 1\nhttps_validate_certificates = True\n"
        "[GSUtil]\ndefault_project_id = test-project\n"
    )
    return files
