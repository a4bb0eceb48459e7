"""The real gcloud against the local Composer API double (``local/composer_api.py``) and fake-gcs-server.

:func:`start_double` starts the double on a free port for a catalogue; :func:`gcloud_env` is the
environment a user's shell would have after one ``gcloud auth login``, pointed at the local endpoints: a
fresh gcloud config, an access-token file, a project, the Composer and storage endpoint overrides, and no
Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS`` unset, an empty home, no metadata
server), nor ``STORAGE_EMULATOR_HOST``: whatever reads the bucket must use what gcloud gives.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "test-project"
LOCATION = "us-central1"
TOKEN = "ya29.local-user-token"
GCLOUD = shutil.which("gcloud") or "/usr/bin/gcloud"
# Composer's providers per image (what the image ships; the table's minimums are below these).
PROVIDERS = {"cncf-kubernetes": "10.14.0", "google": "22.2.2"}
# One environment per image the support table names, in the spellings gcloud parses.
IMAGES = {
    "c3-af2111": "composer-3-airflow-2.11.1-build.9",
    "c3-af318": "composer-3-airflow-3.1.8-build.3",
    "c3-af322": "composer-3-airflow-3.2.2-build.1",
    "c3-af331": "composer-3-airflow-3.3.1-build.2",
    "c2-af2111": "composer-2.16.1-airflow-2.11.1",
    "c2-af2105": "composer-2.13.1-airflow-2.10.5",
}


@dataclass
class Double:
    """A running double: its URL, process and folder (token file, gcloud config, catalogue)."""

    url: str
    proc: subprocess.Popen[bytes]
    home: Path

    def stop(self) -> None:
        """End the double's process."""
        self.proc.terminate()
        self.proc.wait(timeout=10)


def catalogue_entry(name: str, image: str, bucket: str, **extra: Any) -> dict[str, Any]:
    """One environment of the double's catalogue."""
    return {"name": name, "image": image, "bucket": bucket, "providers": dict(PROVIDERS), **extra}


def start_double(
    home: Path, environments: list[dict[str, Any]], port: int, *, env: dict[str, str] | None = None
) -> Double:
    """Start ``python -m local.composer_api`` for these environments and wait until it answers.

    :param env: the double's process environment (default: this process's); an environment's
        ``airflow_cli`` runs with it.
    """
    home.mkdir(parents=True, exist_ok=True)
    catalogue = home / "catalogue.json"
    catalogue.write_text(
        json.dumps({"project": PROJECT, "location": LOCATION, "token": TOKEN, "environments": environments})
    )
    (home / "token").write_text(TOKEN)
    log = (home / "composer_api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.composer_api", "--port", str(port), "--catalogue", str(catalogue)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1)
            return Double(url=url, proc=proc, home=home)
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"the Composer API double did not start: {log.name}") from None
            time.sleep(0.1)


def gcloud_env(double: Double, gcs_url: str) -> dict[str, str]:
    """A shell after ``gcloud auth login`` (token file) and no ADC, pointed at the local endpoints."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST")
        and not k.startswith("CLOUDSDK_")
    }
    (double.home / "user-home").mkdir(exist_ok=True)
    env.update(
        {
            "HOME": str(double.home / "user-home"),  # no ~/.config/gcloud/application_default_credentials
            "CLOUDSDK_CONFIG": str(double.home / "gcloud-config"),
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(double.home / "token"),
            "CLOUDSDK_CORE_PROJECT": PROJECT,
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPOSER": f"{double.url}/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{gcs_url}/storage/v1/",
            "GCE_METADATA_HOST": "127.0.0.1:9",  # no metadata server: ADC cannot come from there
            "GCE_METADATA_IP": "127.0.0.1:9",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "dags"), str(ROOT)]),
        }
    )
    return env


def script_runner() -> str:
    """The ``script-runner`` console script installed next to this interpreter (what a user runs)."""
    found = Path(sys.executable).with_name("script-runner")
    return str(found) if found.exists() else shutil.which("script-runner") or "script-runner"


def deploy(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``script-runner deploy ARGS`` as the user runs it: the console script in its own process."""
    return subprocess.run(
        [script_runner(), "deploy", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` is exactly ``env`` inside (what gcloud and the storage client see), restored after."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def deploy_in_process(
    env: dict[str, str], *args: str, before: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``script-runner deploy ARGS`` through the CLI's ``main()`` in this process, the real gcloud underneath.

    The same code path as :func:`deploy` minus the interpreter start and imports (most of a deploy's time):
    the process environment is ``env`` for the call, gcloud still runs as its own binary.
    """
    from script_runner.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    argv = [*before, "deploy", *args]  # before: the options ahead of the command (--preset, --settings)
    with _environ(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
