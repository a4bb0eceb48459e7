"""Benchmark 5's contrast: a plain mapped DAG over N items (N from OVERFLOW_ITEMS), no shards.

Past [core] max_map_length the mapped task cannot expand and the run fails (unmappable_return_value_length).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, task

ITEMS = int(os.environ.get("OVERFLOW_ITEMS", "10"))

with DAG(dag_id="bare_overflow", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:

    @task
    def items() -> list[int]:
        return list(range(ITEMS))

    @task
    def run_item(x: int) -> int:
        return x

    run_item.expand(x=items())
