"""Reference for the trigger form's parse cost: our airflow DAG built exactly the same way, without params."""

from __future__ import annotations

from script_runner.dag import build_dag

dag = build_dag(dag_id="gcs_script_runner_no_params", params=False)
