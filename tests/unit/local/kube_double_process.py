"""Start the Kubernetes API double as a subprocess (process kubelet) and hand back a real client."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import client, config

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]


@contextmanager
def running_double(state: Path, *extra: str, port: int | None = None) -> Iterator[dict[str, Any]]:
    """The double on a free port; yields ``api`` (CoreV1Api), ``client`` (ApiClient), ``url`` and ``proc``
    (its process, for a test that signals or stops it: one it stopped is left alone at the end).

    :param extra: more command-line options for ``python -m local.kube_double``.
    :param port: the port to listen on (a restart on the same port); default: a free one.
    """
    port = port or free_port()
    args = ["--port", str(port), "--state-dir", str(state), "--kubelet", "process", *extra]
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.kube_double", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (state / "ready").exists():
            assert proc.poll() is None, "the double exited at start"
            assert time.monotonic() < deadline, "the double did not start"
            time.sleep(0.1)
        api_client = config.new_client_from_config(str(state / "kubeconfig"))
        api = client.CoreV1Api(api_client)
        yield {"api": api, "client": api_client, "url": f"http://127.0.0.1:{port}", "proc": proc}
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=15)
