"""Baseline for the benchmarks: the "naive" airflow DAG users write today (do not deploy this).

Globs the mounted data folder at PARSE time and creates one BashOperator per script: every parse (and
Airflow re-parses the file for every task instance) pays for the folder listing and the operator objects.
"""

from __future__ import annotations

import glob
import os
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

DATA = os.environ.get("NAIVE_DATA_DIR", "/home/airflow/gcs/data")

with DAG(dag_id="naive_bash_scripts", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
    for path in sorted(glob.glob(os.path.join(DATA, "**", "*.sh"), recursive=True)):
        rel = os.path.relpath(path, DATA)
        task_id = "run_" + "".join(ch if ch.isalnum() else "_" for ch in rel)
        # The trailing space stops Airflow from treating the ".sh" command as a template file name.
        BashOperator(task_id=task_id, bash_command=f"bash {path} ")
