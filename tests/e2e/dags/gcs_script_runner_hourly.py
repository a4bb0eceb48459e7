"""Airflow DAG gcs_script_runner_hourly: the runner DAG as deployed with SCRIPT_RUNNER_SCHEDULE=@hourly.

For tests/e2e/test_intervals.py only: the local stack adds this folder as a DAG bundle of its own when
``SR_E2E_DAGS=1`` (the e2e session sets it). The stack's own DAG has no schedule (tests trigger it), so
real scheduled and backfill runs need this one. It is created paused: only the test unpauses it, so no
hourly run of it ever starts during the other tests (it reads the same settings Variable).
"""

from __future__ import annotations

import os

from script_runner.dag import build_dag

_saved = os.environ.get("SCRIPT_RUNNER_SCHEDULE")
os.environ["SCRIPT_RUNNER_SCHEDULE"] = "@hourly"  # parse time, as a deployment sets it
try:
    dag = build_dag("gcs_script_runner_hourly")
finally:
    if _saved is None:
        os.environ.pop("SCRIPT_RUNNER_SCHEDULE", None)
    else:
        os.environ["SCRIPT_RUNNER_SCHEDULE"] = _saved
dag.is_paused_upon_creation = True
