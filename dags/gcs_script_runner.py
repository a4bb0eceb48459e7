"""Airflow DAG gcs_script_runner: run each shell script of the bucket's data/ folder in its own pod.

Wiring only; see dags/script_runner/ and docs/DESIGN.md. Nothing is listed or read at parse time.
(The words "airflow" and "DAG" above keep Airflow's safe-mode file discovery finding this file.)
"""

from __future__ import annotations

from script_runner.dag import build_dag

dag = build_dag()
