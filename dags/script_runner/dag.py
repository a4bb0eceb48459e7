"""Builds the ``gcs_script_runner`` DAG: discover → run_scripts (mapped pods) → report.

Nothing here does I/O at parse time: settings, listing and header reads all happen inside tasks.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta
from typing import Any

from script_runner import constants as c
from script_runner.compat import AIRFLOW_3, DAG, get_current_context, retry_backoff, task
from script_runner.operator import ScriptPodOperator
from script_runner.settings import parse_time_settings

log = logging.getLogger(__name__)

DOC = """
Runs every shell script under the configured source (default `gs://$GCS_BUCKET/data/`) in its own pod.
`discover` lists the scripts at run time and validates their `# runner:` headers; rejected scripts are
listed in the report with the fix. Trigger with `{"rerun": true}` to ignore done-markers.
"""


def _run_task_id(index: int, shards: int) -> str:
    return c.RUN_TASK_ID if shards == 1 else f"{c.RUN_TASK_ID}_{index}"


def build_dag(dag_id: str = c.DAG_ID) -> DAG:
    """The DAG object. Shape (shards, retry ceiling, schedule) comes from the environment only."""
    shape = parse_time_settings()
    shards = shape["shards"]
    raw_schedule = os.environ.get(c.ENV_PREFIX + "SCHEDULE", "@daily").strip()
    # "none"/"" mean: only manual or API triggers (the local stack and tests use this).
    schedule = None if raw_schedule.lower() in ("", "none", "null") else raw_schedule
    with DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        # No DAG params: trigger with the conf {"rerun": true}. (Params cost a JSON-schema check on every
        # parse, a fifth of this file's parse time.)
        tags=["script-runner"],
        doc_md=DOC,
        default_args={"owner": "script-runner"},
    ) as dag:
        # The plans carry each script's env= values: never print them as the task's return value.
        @task(task_id=c.DISCOVER_TASK_ID, show_return_value_in_logs=False)
        def discover() -> list[dict[str, Any]]:
            from script_runner.tasks import run_discovery

            return run_discovery(shards=shards)

        @task(show_return_value_in_logs=False)
        def pick_shard(index: int) -> list[dict[str, Any]]:
            ti = get_current_context()["ti"]
            return ti.xcom_pull(task_ids=c.DISCOVER_TASK_ID, key=f"shard_{index}") or []  # type: ignore[no-any-return]

        found = discover()
        # Shard 0 is discover's return value; each further shard gets a small task returning its list
        # (Airflow maps only over return values). Shards exist to pass max_map_length (1 024 by default).
        sources = [found] + [pick_shard.override(task_id=f"shard_{i}")(i) for i in range(1, shards)]
        runs = [
            ScriptPodOperator.partial(
                task_id=_run_task_id(i, shards),
                retries=shape["max_retries"],
                retry_delay=timedelta(seconds=shape["retry_delay"]),
                retry_exponential_backoff=retry_backoff(),
                max_retry_delay=timedelta(minutes=30),
                map_index_template="{{ task.script_path }}",
            ).expand(script=sources[i])
            for i in range(shards)
        ]

        @task(task_id=c.REPORT_TASK_ID, trigger_rule="all_done")
        def report() -> dict[str, Any]:
            from script_runner.tasks import run_report

            return run_report(shards=shards, run_task_ids=[_run_task_id(i, shards) for i in range(shards)])

        done = report()
        found >> sources[1:]  # type: ignore[operator]
        for source, run in zip(sources, runs, strict=True):
            source >> run  # type: ignore[operator]
        runs >> done  # type: ignore[operator]
    return dag


def current_conf() -> dict[str, Any]:
    """The triggering conf of the current run (empty outside a task)."""
    ctx = get_current_context()
    conf = getattr(ctx.get("dag_run"), "conf", None) or {}
    return dict(conf) if isinstance(conf, dict) else json.loads(str(conf))


__all__ = ["AIRFLOW_3", "build_dag", "current_conf"]
