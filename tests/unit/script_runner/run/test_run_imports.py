"""What a run task imports before and after its pod: no storage client, gRPC nor google-api-core (issue 26).

Its storage calls are the done-marker read before the pod, the done-marker write after a success and the
attempt's ledger record; all go over plain HTTP (``script_runner.run.gcs_write``) for a connection that
needs nothing of the Google provider (here: anonymous, against the GCS emulator).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[4]
HEAVY = ("google.cloud.storage", "grpc", "google.api_core")
# A run task's first try (Airflow 3's context: try 1, never rescheduled) in a fresh process. KubernetesPodOperator.execute is the pod (real pods need a
# cluster): a stand-in that ends as KPO does after a pod exited 0, through the operator's cleanup hook
# (usage read from the pod skipped). Then a second run of the same interval finds the marker and skips.
RUN_TASK = """
import json, sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

from script_runner.config.compat import AirflowSkipException
from script_runner.config.settings_loader import load_settings
from script_runner.run import operator as operator_module
from script_runner.run.operator import ScriptPodOperator
from script_runner.run.policy import Outcome, Status

def pod_succeeded(self, context, **kwargs):
    self._outcome = Outcome(Status.SUCCESS, 0)
    self._mark_done()

KubernetesPodOperator.execute = pod_succeeded
settings = load_settings(environ={"GCS_BUCKET": sys.argv[1], "SCRIPT_RUNNER_PRESET": "local"})
script = json.loads(sys.argv[2])
start = datetime(2026, 12, 4, 13, tzinfo=UTC)

def context(run_id):
    ti = SimpleNamespace(dag_id="gcs_script_runner", try_number=1, max_tries=2)
    return {
        "run_id": run_id, "ti": ti, "task_reschedule_count": 0, "params": {}, "logical_date": start,
        "data_interval_start": start, "data_interval_end": start + timedelta(hours=1),
        "dag_run": SimpleNamespace(conf={}, run_after=start + timedelta(hours=1)),
    }

ScriptPodOperator(task_id="run_scripts", script=script, runner_settings=settings).execute(context("r1"))
try:
    ScriptPodOperator(task_id="run_scripts", script=script, runner_settings=settings).execute(context("r2"))
    raise SystemExit("the second run of the interval was not skipped by the done-marker")
except AirflowSkipException:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.startswith(%r))))
""" % (HEAVY,)  # noqa: UP031 (the code's own braces)


def test_run_imports_no_storage_client_before_or_after_the_pod(
    gcs_client: Any, gcs_emulator: str, make_bucket: Any, tmp_path: Path
) -> None:
    from tests.unit.script_runner.run.test_operator import SCRIPT

    bucket = make_bucket({}).name
    script = {**SCRIPT, "md5": "XrY7u+Ae7tCTyyK7j1rNww=="}
    conn = {"conn_type": "google_cloud_platform", "extra": {"project": "test-project", "is_anonymous": True}}
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "dags"),
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(conn),
        "STORAGE_EMULATOR_HOST": gcs_emulator,
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN_TASK, bucket, json.dumps(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert heavy == [], f"a run task imports {len(heavy)} storage-client modules: {heavy[:10]}"
    names = sorted(b.name for b in gcs_client.list_blobs(bucket))
    marker = "cache/done/etl/load.sh/5eb63bbbe01eeed093cb22bb8f5acdc3/20261204T1300Z-20261204T1400Z"
    assert any(n.endswith(marker) for n in names), names  # the task did write and read its marker
    assert any("/ledger/r1/etl/load.sh/" in n for n in names), names
    assert any("/ledger/r2/etl/load.sh/" in n for n in names), names  # the skip's record
