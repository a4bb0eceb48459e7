"""Reference for parse-time cost: the smallest two-task mapped airflow DAG (a list task and a mapped task)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="bare_mapped", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:

    @task
    def items() -> list[int]:
        return [1, 2, 3]

    @task
    def work(x: int) -> int:
        return x

    work.expand(x=items())
