"""``script-runner deploy --environment`` through the real gcloud against the local Composer API double.

A user's shell after one ``gcloud auth login`` (here: an access-token file) and nothing else: no
Application Default Credentials, no emulator variable. For every image the support table names (and a
Composer 2 one), deploy describes the environment with gcloud, uploads the DAG to the environment's bucket
(fake-gcs-server) and merges the settings Variable: through ``gcloud composer environments run ... variables``
where gcloud allows it (Airflow 2), through the environment's Airflow REST API at ``airflowUri`` with the
gcloud-issued token on Airflow 3. These need no Airflow (the double keeps Variables in memory).

One test runs the ``script-runner`` console script as its own process, as a user does; the others call the
CLI's ``main()`` in this process (``deploy_in_process``), still with the real gcloud binary underneath: an
interpreter start with its imports is most of a deploy's time, and the code path is the same.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from script_runner.deploy.files import local_files
from script_runner.deploy.plan import VARIABLE
from tests.composer_double import (
    GCLOUD,
    IMAGES,
    LOCATION,
    PROVIDERS,
    TOKEN,
    Double,
    catalogue_entry,
    deploy,
    deploy_in_process,
    gcloud_env,
    start_double,
)
from tests.conftest import free_port, start_emulator
from tests.e2e.deploy_run import deploy_then_run

DAGS = Path(__file__).resolve().parents[2] / "dags"
BUCKET = "deploy-gcloud-env"


def _head() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=DAGS
    ).stdout.strip()


@pytest.fixture(scope="module")
def gcs_emulator() -> Iterator[str]:
    """This module's own fake-gcs-server (the Composer environments' buckets), its URL in
    ``STORAGE_EMULATOR_HOST`` only while this module runs: the session's e2e tests after it keep the local
    stack's emulator (tests/conftest's session fixture would leave its own URL set for the whole session)."""
    import os

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


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory, gcs_emulator: str) -> Iterator[Double]:
    from google.cloud import storage

    client = storage.Client(project="test-project")
    envs = []
    for name, image in IMAGES.items():
        bucket = f"{BUCKET}-{name}-{uuid.uuid4().hex[:6]}"
        client.create_bucket(bucket)
        envs.append(catalogue_entry(name, image, bucket))
    started = start_double(tmp_path_factory.mktemp("composer"), envs, free_port())
    yield started
    started.stop()


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """A support table proving every imaged release on this checkout's HEAD (the compat state aside)."""
    path = tmp_path / "support.json"
    releases = sorted({image.split("-airflow-")[1].split("-")[0] for image in IMAGES.values()})
    sets = [
        {"name": r, "airflow": r, "providers": dict(PROVIDERS), "supported": True, "commit": _head()}
        for r in releases
    ]
    path.write_text(json.dumps({"sets": sets}))
    return path


def _front(double: Double, env: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A call to the environment's Airflow behind the double's Google-token front."""
    req = urllib.request.Request(
        f"{double.url}/airflow/{env}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _api(image: str) -> str:
    return "/api/v1" if "-airflow-2." in image else "/api/v2"


def _bucket_of(double: Double, env: str) -> str:
    catalogue = json.loads((double.home / "catalogue.json").read_text())
    return next(str(e["bucket"]) for e in catalogue["environments"] if e["name"] == env)


@pytest.mark.parametrize("env", sorted(IMAGES))
def test_deploy_gcloud_every_supported_image_uploads_and_merges_the_variable(
    double: Double, gcs_emulator: str, table: Path, env: str
) -> None:
    from google.cloud import storage

    api = _api(IMAGES[env])
    status, _ = _front(
        double, env, "POST", f"{api}/variables", {"key": VARIABLE, "value": '{"max_retries": 4}'}
    )
    assert status in (200, 201)
    shell = gcloud_env(double, gcs_emulator)
    done = deploy_in_process(
        shell,
        "--environment",
        env,
        "--location",
        LOCATION,
        "--support-table",
        str(table),
        "--image",
        "europe-docker.pkg.dev/p/r/script-runner:v1",
    )
    assert done.returncode == 0, done.stderr + done.stdout
    status, variable = _front(double, env, "GET", f"{api}/variables/{VARIABLE}")
    assert status == 200, variable
    preset = "composer3" if env.startswith("c3") else "composer2"
    assert json.loads(variable["value"]) == {
        "image": "europe-docker.pkg.dev/p/r/script-runner:v1",
        "max_retries": 4,
        "preset": preset,
    }
    bucket = _bucket_of(double, env)
    names = {b.name for b in storage.Client(project="test-project").list_blobs(bucket)}
    assert set(local_files(DAGS)) <= names
    _front(double, env, "DELETE", f"{api}/variables/{VARIABLE}")


def test_deploy_gcloud_gcloud_itself_refuses_variables_on_airflow3(double: Double, gcs_emulator: str) -> None:
    # What the deploy must not rely on: gcloud's own allowlist (`variables [**, 3.0.0)`).
    shell = gcloud_env(double, gcs_emulator)
    argv = [GCLOUD, "composer", "environments", "run", "c3-af331", "--location", LOCATION, "variables"]
    done = subprocess.run(
        [*argv, "--", "get", VARIABLE], env=shell, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert (
        'The subcommand "variables" is not supported for Composer environments with Airflow version 3.3.1'
        in (done.stderr)
    )


def test_deploy_gcloud_airflow3_keeps_the_variable_through_the_rest_api_not_gcloud_run(
    double: Double, gcs_emulator: str, table: Path
) -> None:
    # The console script in its own process, as a user runs it.
    # The bucket reachable as with ADC (the emulator variable): only the Variable's path is under test.
    shell = {**gcloud_env(double, gcs_emulator), "STORAGE_EMULATOR_HOST": gcs_emulator}
    done = deploy(shell, "--environment", "c3-af331", "--location", LOCATION, "--support-table", str(table))
    assert done.returncode == 0, done.stderr + done.stdout
    assert "is not supported for Composer environments with Airflow version" not in done.stderr
    status, variable = _front(double, "c3-af331", "GET", f"/api/v2/variables/{VARIABLE}")
    assert status == 200, variable
    assert json.loads(variable["value"]) == {"preset": "composer3"}
    _front(double, "c3-af331", "DELETE", f"/api/v2/variables/{VARIABLE}")


def test_deploy_gcloud_dry_run_on_airflow3_shows_the_rest_calls_and_writes_nothing(
    double: Double, gcs_emulator: str, table: Path
) -> None:
    from google.cloud import storage

    shell = gcloud_env(double, gcs_emulator)
    args = ("--environment", "c3-af318", "--location", LOCATION, "--support-table", str(table), "--dry-run")
    bucket = storage.Client(project="test-project").bucket(_bucket_of(double, "c3-af318"))
    before = {(b.name, b.generation) for b in bucket.list_blobs()}
    done = deploy_in_process(shell, *args)
    assert done.returncode == 0, done.stderr + done.stdout
    api = f"{double.url}/airflow/c3-af318/api/v2/variables/{VARIABLE}"
    assert f"GET {api} (Authorization: Bearer <token from gcloud auth print-access-token>)" in done.stdout
    assert "environments run" not in done.stdout
    assert TOKEN not in done.stdout + done.stderr  # the token is never printed
    assert {(b.name, b.generation) for b in bucket.list_blobs()} == before  # nothing written
    assert _front(double, "c3-af318", "GET", f"/api/v2/variables/{VARIABLE}")[0] == 404


def test_deploy_gcloud_merges_the_environments_airflowignore(
    double: Double, gcs_emulator: str, table: Path
) -> None:
    from google.cloud import storage

    blob = (
        storage.Client(project="test-project")
        .bucket(_bucket_of(double, "c3-af322"))
        .blob("dags/.airflowignore")
    )
    blob.upload_from_string("legacy_jobs/\n.*_test\\.py\n")
    shell = gcloud_env(double, gcs_emulator)
    done = deploy_in_process(
        shell, "--environment", "c3-af322", "--location", LOCATION, "--support-table", str(table)
    )
    assert done.returncode == 0, done.stderr + done.stdout
    lines = blob.download_as_bytes().decode().splitlines()
    assert lines[:2] == ["legacy_jobs/", ".*_test\\.py"]  # the environment's own lines stay
    assert "script_runner/" in lines
    _front(double, "c3-af322", "DELETE", f"/api/v2/variables/{VARIABLE}")


def test_deploy_gcloud_without_any_login_names_the_login_commands(
    double: Double, gcs_emulator: str, table: Path
) -> None:
    shell = gcloud_env(double, gcs_emulator)
    del shell["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"]  # no gcloud login, no ADC
    done = deploy_in_process(  # a traceback would propagate out of main() and fail here
        shell,
        "--bucket",
        "gs://some-bucket",
        "--versions",
        "airflow=2.11.1",
        "--dry-run",
        "--support-table",
        str(table),
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "gcloud auth login" in done.stderr
    assert "gcloud auth application-default login" in done.stderr


def test_deploy_gcloud_then_the_dag_runs_green_on_the_local_airflow(
    stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment's Airflow is the local stack's (the double forwards its front there with the
    # credentials the stack accepts); the same check runs on every supported Airflow in test_compat.
    deploy_then_run(stack, tmp_path, monkeypatch)
