"""The Pub/Sub emulator of the local stack: where fake-gcs-server publishes the bucket's object events.

The Google Cloud CLI's emulator (``gcloud beta emulators pubsub start``, a Java server) stands for Cloud
Pub/Sub; fake-gcs-server publishes an ``OBJECT_FINALIZE`` message for every upload under ``data/`` to
:data:`TOPIC`, as a GCS bucket notification does, and the runner's upload watcher pulls :data:`SUBSCRIPTION`.
Topic and subscription are created with the emulator's REST API once it answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

PROJECT = "test-project"
TOPIC = os.environ.get("SR_UPLOAD_TOPIC", "script-runner-uploads")
SUBSCRIPTION = os.environ.get("SR_UPLOAD_SUBSCRIPTION", "script-runner-uploads")
# The uploads that start runs, as the deploy side's `--object-prefix=data/` (k8s/setup-upload.sh).
EVENT_PREFIX = "data/"
# Longer than the watcher's settle window and its longest batch: a message is acked after its event.
ACK_DEADLINE_SECONDS = 60
GCLOUD = Path("/usr/bin/gcloud")
# The emulator component (Debian package google-cloud-cli-pubsub-emulator), run by gcloud with Java.
EMULATOR = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator")


def installed() -> bool:
    """Whether gcloud, its Pub/Sub emulator component and Java are on this machine."""
    return GCLOUD.exists() and EMULATOR.is_dir() and shutil.which("java") is not None


def enabled() -> bool:
    """Whether the stack runs the emulator: installed, and not left out with ``SR_PUBSUB=0`` (without it
    there are no runs on upload locally)."""
    return os.environ.get("SR_PUBSUB", "1") != "0" and installed()


def host(port: int) -> str:
    """``host:port`` of the emulator, the form ``PUBSUB_EMULATOR_HOST`` takes.

    :param port: the emulator's port (``SR_PUBSUB_PORT``).
    """
    return f"127.0.0.1:{port}"


def command(port: int, data_dir: Path) -> list[str]:
    """The command that starts the emulator (gcloud runs it as ``java -jar …``, in the same group).

    :param port: the port to listen on, loopback only.
    :param data_dir: where gcloud writes the emulator's env.yaml (it refuses a missing folder).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        str(GCLOUD),
        "beta",
        "emulators",
        "pubsub",
        "start",
        f"--host-port={host(port)}",
        f"--project={PROJECT}",
        f"--data-dir={data_dir}",
        "--quiet",
    ]


def _put(url: str, body: dict[str, object] | None = None) -> None:
    req = urllib.request.Request(
        url,
        method="PUT",
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(req, timeout=10).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # already there (a restarted stack keeps nothing, but a reused one does)
            raise


def create_topic_and_subscription(port: int) -> None:
    """The topic fake-gcs-server publishes to and the subscription the upload watcher pulls.

    :param port: the emulator's port.
    """
    base = f"http://{host(port)}/v1/projects/{PROJECT}"
    _put(f"{base}/topics/{TOPIC}")
    _put(
        f"{base}/subscriptions/{SUBSCRIPTION}",
        {"topic": f"projects/{PROJECT}/topics/{TOPIC}", "ackDeadlineSeconds": ACK_DEADLINE_SECONDS},
    )


def ready(port: int) -> bool:
    """Whether the emulator answers HTTP (it serves REST and gRPC on one port).

    :param port: the emulator's port.
    """
    with contextlib.suppress(Exception), urllib.request.urlopen(f"http://{host(port)}/", timeout=1) as resp:
        return bool(resp.status == 200)
    return False


def gcs_event_flags(bucket: str) -> list[str]:
    """fake-gcs-server flags that publish the bucket's uploads under ``data/`` to the topic.

    fake-gcs-server reads the emulator's address from ``PUBSUB_EMULATOR_HOST`` in its environment.

    :param bucket: the Composer-like bucket whose uploads are published.
    """
    return [
        "-event.pubsub-project-id",
        PROJECT,
        "-event.pubsub-topic",
        TOPIC,
        "-event.bucket",
        bucket,
        "-event.object-prefix",
        EVENT_PREFIX,
        "-event.list",
        "finalize",
    ]


def subscription_path() -> str:
    """``projects/P/subscriptions/S``: the value of ``SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION`` on the stack."""
    return f"projects/{PROJECT}/subscriptions/{SUBSCRIPTION}"
