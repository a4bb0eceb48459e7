"""Builds the ``gcs_script_runner`` DAG: discover → run_scripts (mapped pods) → report.

Nothing here does I/O at parse time: settings, listing and header reads all happen inside tasks.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
from datetime import datetime, timedelta
from typing import Any

from script_runner.config import constants as c
from script_runner.config.compat import AIRFLOW_3, DAG, retry_backoff, task
from script_runner.config.params import dag_params
from script_runner.config.settings_loader import parse_time_settings
from script_runner.discover.shards import ShardList, default_shards, max_map_length, run_task_id
from script_runner.run.operator import ScriptPodOperator
from script_runner.upload.rules import upload_wiring
from script_runner.upload.watch import upload_schedule

log = logging.getLogger(__name__)

DOC = """
Runs every shell script under the configured source (default `gs://$GCS_BUCKET/data/`) in its own pod.
`discover` lists the scripts at run time and validates their `# runner:` headers; rejected scripts are
listed in the report with the fix. Scripts may wait for others (`# runner: after=etl/extract.sh`) and run on
their own schedule (`# runner: schedule=0 6 * * 1`). The trigger form offers `only`, `exclude`, `dry_run`,
`rerun` (ignore done-markers), `reason` and `due_at`; a raw conf `{"rerun": true}` works too.
"""


def _same_partial(first: Any, task_id: str) -> Any:
    """A copy of an operator's ``partial()`` (not yet expanded) under another task id."""
    import attrs

    return attrs.evolve(first, kwargs={**first.kwargs, "task_id": task_id}, params=copy.copy(first.params))


def build_dag(dag_id: str = c.DAG_ID, *, params: bool = True) -> DAG:
    """The DAG object. Shape (shards, retry ceiling, schedule) comes from the environment only.

    :param dag_id: the DAG's id.
    :param params: give the DAG its run params (the trigger form); False only to measure their parse cost.
    """
    shape = parse_time_settings()
    # 0 (unset): one run task, or enough for SCRIPT_RUNNER_MAX_SCRIPTS under Airflow's max_map_length.
    shards = shape["shards"] or default_shards(max_map_length(), shape["max_scripts"] or None)
    raw_schedule = os.environ.get(c.ENV_PREFIX + "SCHEDULE", "@daily").strip()
    # "none"/"" mean: only manual or API triggers (the local stack and tests use this).
    cron = None if raw_schedule.lower() in ("", "none", "null") else raw_schedule
    wiring = upload_wiring()
    # Runs on upload (Airflow 3): the upload asset's watcher, alone or beside the time schedule.
    schedule = cron if wiring is None else upload_schedule(cron, wiring)
    with DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        # The trigger form (params.py); the raw conf {"rerun": true} of older releases still works.
        params=dag_params() if params else None,
        tags=["script-runner"],
        doc_md=DOC,
        default_args={"owner": "script-runner"},
    ) as dag:
        # The plans carry each script's env= values: never print them as the task's return value.
        @task(task_id=c.DISCOVER_TASK_ID, show_return_value_in_logs=False)
        def discover() -> list[dict[str, Any]]:
            from script_runner.tasks import run_discovery

            return run_discovery(
                shards=shards,
                dag_schedule=cron,
                run_task_ids=[run_task_id(i) for i in range(shards)],
            )

        found = discover()
        # Shard 0 is discover's return value; each further shard gets a small task returning its list
        # (Airflow maps only over return values). Shards exist to pass max_map_length (1 024 by default).
        # The producers form a chain: the first empty shard skips, and the rest are skipped unrun.
        producers = [ShardList(index=i) for i in range(1, shards)]
        sources = [found, *(p.output for p in producers)]
        first = ScriptPodOperator.partial(
            task_id=run_task_id(0),
            retries=shape["max_retries"],
            retry_delay=timedelta(seconds=shape["retry_delay"]),
            retry_exponential_backoff=retry_backoff(),
            max_retry_delay=timedelta(minutes=30),
            map_index_template="{{ task.script_path }}",
        )
        # The other shards' partials are copies with their own task id: partial() inspects the signature
        # of every class of the KubernetesPodOperator each time, most of this file's parse at 10 shards.
        partials = [first] + [_same_partial(first, run_task_id(i)) for i in range(1, shards)]
        runs = [part.expand(script=source) for part, source in zip(partials, sources, strict=True)]

        @task(task_id=c.REPORT_TASK_ID, trigger_rule="all_done")
        def report() -> dict[str, Any]:
            from script_runner.tasks import run_report

            return run_report(shards=shards, run_task_ids=[run_task_id(i) for i in range(shards)])

        done = report()
        chain = [found, *producers]
        for before, after in itertools.pairwise(chain):
            before >> after  # type: ignore[operator]
        runs >> done  # type: ignore[operator]
    return dag


__all__ = ["AIRFLOW_3", "build_dag"]
