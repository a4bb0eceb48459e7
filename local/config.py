"""Where the local stack lives and listens: its folders, ports, buckets and Airflow's virtualenv.

Every value is read once at import, each overridable by its ``SR_*`` variable. The stack's modules read them
as ``config.NAME`` at call time, so a test sets one (``monkeypatch.setattr(config, "RUN", ...)``) for all.
Imports nothing of the stack.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = Path(os.environ.get("SR_RUN_DIR", ROOT / "local" / ".run"))
LOGS = RUN / "logs"
PIDS = RUN / "pids"
# Airflow's virtualenv (its `airflow` command, and first on the PATH of Airflow's processes); the other
# components (emulator front, Kubernetes double) always run with the interpreter running the stack.
AIRFLOW_VENV = os.environ.get("SR_AIRFLOW_VENV", "")
VENV_BIN = Path(AIRFLOW_VENV) / "bin" if AIRFLOW_VENV else Path(sys.executable).parent
IAM_POLICY = Path(os.environ.get("SR_IAM_POLICY", ROOT / "local" / "iam" / "policy.json"))
BUCKET = os.environ.get("SR_BUCKET", "composer-bucket")
OUT_BUCKET = BUCKET + "-out"


@dataclass(frozen=True)
class Ports:
    """Ports of the stack (docs/DESIGN.md), each overridable by its SR_* variable."""

    gcs_http: int = int(os.environ.get("SR_GCS_HTTP_PORT", "4480"))
    gcs_https: int = int(os.environ.get("SR_GCS_HTTPS_PORT", "4443"))
    pg: int = int(os.environ.get("SR_PG_PORT", "55432"))
    kube: int = int(os.environ.get("SR_KUBE_PORT", "8765"))
    airflow: int = int(os.environ.get("SR_AIRFLOW_PORT", "8280"))
    iam: int = int(os.environ.get("SR_IAM_PORT", "4490"))
    # The IAM front's https port, for gsutil (https only); next to the http one unless set.
    iam_https: int = int(
        os.environ.get("SR_IAM_HTTPS_PORT", str(int(os.environ.get("SR_IAM_PORT", "4490")) + 1))
    )
    pubsub: int = int(os.environ.get("SR_PUBSUB_PORT", "8685"))
    # Airflow's log servers (the worker's and the triggerer's): two stacks side by side need their own.
    worker_log: int = int(os.environ.get("SR_WORKER_LOG_PORT", "8793"))
    trigger_log: int = int(os.environ.get("SR_TRIGGER_LOG_PORT", "8794"))


PORTS = Ports()


def gcs_url() -> str:
    """The GCS emulator's http endpoint (Airflow's processes talk to it directly)."""
    return f"http://127.0.0.1:{PORTS.gcs_http}"


def iam_url() -> str:
    """The IAM front's http endpoint (what pods talk to instead of the emulator)."""
    return f"http://127.0.0.1:{PORTS.iam}"
