"""``script-runner deploy`` against the local stack: versions from the running Airflow's REST API, the DAG and
package into a GCS emulator bucket's dags/, the settings Variable merged through the REST API."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from local.airflow_client import AirflowClient
from script_runner.cli.main import main
from script_runner.deploy.files import local_files
from script_runner.deploy.plan import VARIABLE

DAGS = Path(__file__).resolve().parents[2] / "dags"


def _variable(stack: AirflowClient) -> str | None:
    try:
        return str(stack.request("GET", f"/api/v2/variables/{VARIABLE}")["value"])
    except RuntimeError:
        return None


def test_deploy_to_the_local_stack_checks_versions_uploads_and_merges_the_variable(
    stack: AirflowClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from google.cloud import storage

    gcs = storage.Client(project="test-project")
    bucket = gcs.create_bucket(f"deploy-e2e-{uuid.uuid4().hex[:8]}")
    before = _variable(stack)
    stack.set_variable(VARIABLE, json.dumps({"max_retries": 4, "image": "old/image:1", "preset": "local"}))
    # compat/support.json may be older than dags/ (refused by default): this test is about the mechanics
    argv = ["deploy", "--bucket", f"gs://{bucket.name}", "--airflow-url", stack.base, "--allow-unproven"]
    try:
        # Outside the support table: refused with the reason, nothing written.
        table = tmp_path / "support.json"
        table.write_text(json.dumps({"sets": [{"airflow": "2.11.1", "providers": {"google": "22.2.0"}}]}))
        assert main([*argv, "--support-table", str(table)]) == 2
        assert "refusing to deploy to Airflow 3.3." in capsys.readouterr().err
        assert list(gcs.list_blobs(bucket.name)) == []

        # A dry run reads the versions from the REST API and writes nothing.
        assert main([*argv, "--image", "localhost/script-runner:local", "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "versions: Airflow 3.3." in out
        assert "cncf-kubernetes 10." in out
        assert "google 22." in out
        assert f"[{stack.base}/api/v2]" in out
        assert f"would upload {len(local_files(DAGS))}, delete 0" in out
        assert list(gcs.list_blobs(bucket.name)) == []
        assert json.loads(_variable(stack) or "{}")["image"] == "old/image:1"

        # The deploy: every file uploaded byte for byte, the Variable merged (new keys win, others kept).
        assert (
            main(["--settings", '{"deferrable": true}', *argv, "--image", "localhost/script-runner:local"])
            == 0
        )
        out = capsys.readouterr().out
        uploaded = {b.name: b for b in gcs.list_blobs(bucket.name)}
        assert set(uploaded) == set(local_files(DAGS))
        for name, path in local_files(DAGS).items():
            assert uploaded[name].download_as_bytes() == path.read_bytes(), name
        assert json.loads(_variable(stack) or "{}") == {
            "deferrable": True,
            "image": "localhost/script-runner:local",
            "max_retries": 4,
            "preset": "local",
        }
        assert "Variable script_runner_settings: merged" in out
        assert f"drop scripts into gs://{bucket.name}/data/" in out
    finally:
        if before is None:
            stack.request("DELETE", f"/api/v2/variables/{VARIABLE}")
        else:
            stack.set_variable(VARIABLE, before)
        for blob in gcs.list_blobs(bucket.name):
            blob.delete()
        bucket.delete()
