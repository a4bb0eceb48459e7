"""Deploy through the real gcloud to the Composer API double fronting the local stack, then run the DAG.

Shared by ``test_deploy_gcloud`` (``make e2e``, the default Airflow) and ``test_compat`` (``make e2e-af2`` on
Composer's default 2.11.1, ``make compat`` on every supported set): whatever Airflow the stack runs, the
double's environment is the one whose image carries that version (``tests/composer_double.IMAGES``, a
Composer 3 one first), so deploy takes the path a user of that image gets: ``gcloud composer environments
run ... variables`` (executeAirflowCommand, run by the stack's own ``airflow`` CLI) on Airflow 2, the REST API
at ``airflowUri`` on Airflow 3. The DAG then runs with nothing but what deploy wrote.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from script_runner.deploy.plan import VARIABLE
from tests.composer_double import (
    IMAGES,
    LOCATION,
    PROVIDERS,
    catalogue_entry,
    deploy_in_process,
    gcloud_env,
    start_double,
)
from tests.conftest import free_port

if TYPE_CHECKING:
    import pytest

    from local.airflow_client import AirflowClient

DAGS = Path(__file__).resolve().parents[2] / "dags"


def image_for(version: str) -> str:
    """The double's image for this Airflow release: a Composer 3 one of ``IMAGES`` first, then Composer 2,
    else a Composer 3 build of it (a release the catalogue does not list, e.g. the stack's newest)."""
    for prefix in ("composer-3-", "composer-2"):
        for image in IMAGES.values():
            if image.startswith(prefix) and f"-airflow-{version}" in image:
                return image
    return f"composer-3-airflow-{version}-build.1"


def _support_table(path: Path, version: str) -> Path:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=DAGS
    ).stdout.strip()
    entry = {
        "name": version,
        "airflow": version,
        "providers": dict(PROVIDERS),
        "supported": True,
        "commit": head,
    }
    path.write_text(json.dumps({"sets": [entry]}))
    return path


def deploy_then_run(stack: AirflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deploy to the double's environment for the stack's Airflow, check what deploy wrote, run the DAG green.

    :param stack: the session's local stack.
    :param tmp_path: the test's folder (the double's home, the scripts, the support table).
    :param monkeypatch: restores ``STORAGE_EMULATOR_HOST`` after the test.
    """
    from local import config as local_config
    from local.airflow_env import full_env
    from tests.e2e.harness import ScriptRunnerHarness

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", local_config.gcs_url())  # the stack's emulator
    runner = ScriptRunnerHarness(
        stack, bucket=local_config.BUCKET, kube_url=f"http://127.0.0.1:{local_config.PORTS.kube}"
    )
    version = str(stack.request("GET", "/api/v2/version")["version"])
    image = image_for(version)
    env = "local-env"
    double = start_double(
        tmp_path / "composer",
        [
            catalogue_entry(
                env,
                image,
                local_config.BUCKET,
                airflow_url=stack.base,
                airflow_cli=[str(local_config.VENV_BIN / "airflow")],  # executeAirflowCommand on Airflow 2
            )
        ],
        free_port(),
        env=full_env(),  # what the stack's Airflow CLI needs (its home, its database)
    )
    prefix = f"deploy-gcloud-{uuid.uuid4().hex[:8]}/"
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "hello.sh").write_text("#!/usr/bin/env bash\nset -euo pipefail\necho hello from deploy\n")
    runner.upload(scripts, prefix)
    # The environment's own .airflowignore, read back through gcloud's storage endpoint override (the stack's
    # emulator names another host, its https port, in each object's mediaLink).
    ignore = runner.gcs.bucket(local_config.BUCKET).blob("dags/.airflowignore")
    ignore.upload_from_string("legacy_jobs/\n")
    try:
        before = stack.request("GET", f"/api/v2/variables/{VARIABLE}")["value"]
    except RuntimeError:
        before = None
    settings = {"source": f"gs://{local_config.BUCKET}/{prefix}", "state_root": runner.state_root}
    try:
        done = deploy_in_process(
            gcloud_env(double, local_config.gcs_url()),
            "--environment",
            env,
            "--location",
            LOCATION,
            "--support-table",
            str(_support_table(tmp_path / "support.json", version)),
            before=("--preset", "local", "--settings", json.dumps(settings)),
        )
        assert done.returncode == 0, f"{image}: {done.stderr}{done.stdout}"
        written = json.loads(stack.request("GET", f"/api/v2/variables/{VARIABLE}")["value"])
        assert written["source"] == settings["source"]
        assert written["preset"] == "local"
        assert ignore.download_as_bytes().decode().splitlines()[0] == "legacy_jobs/"
        result = runner.trigger(timeout=300)
        assert result.state == "success", result.state
        assert set(result.mapped_tasks()) == {"hello.sh"}  # the script deploy's settings point at ran
    finally:
        double.stop()
        if before is None:
            stack.request("DELETE", f"/api/v2/variables/{VARIABLE}")
        else:
            stack.set_variable(VARIABLE, before)
