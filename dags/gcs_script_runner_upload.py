"""Airflow DAG gcs_script_runner_upload: Airflow 2.11's upload watcher (operator guide, "Runs on upload").

Defined only on Airflow 2 with SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION set; on Airflow 3 the runner DAG's own asset
watcher does this job and this file defines no DAG. Wiring only, nothing is read at parse time.
"""

from __future__ import annotations

from script_runner.config.compat import AIRFLOW_3
from script_runner.upload.rules import upload_wiring

_wiring = upload_wiring()
if _wiring is not None and not AIRFLOW_3:
    from script_runner.upload.watch import build_watcher_dag

    dag = build_watcher_dag(_wiring)
