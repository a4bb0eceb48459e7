"""Wiring of runs on upload into Airflow (parse time; nothing here reads or pulls anything).

Airflow 3: the runner DAG is scheduled on an asset whose ``AssetWatcher`` runs :class:`UploadTrigger` in the
triggerer; each settled burst of uploads becomes an asset event, the scheduler starts one run for the events
queued since the last one, and :func:`script_runner.upload.rules.uploaded_from_asset_events` turns them into
the run's ``uploaded`` (exact paths). Airflow 2.11 has no watchers: a small DAG (:data:`WATCHER_DAG_ID`,
continuous, one run at a time) defers to the same trigger and triggers the runner DAG with the conf
``{"uploaded": [...]}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from script_runner.config import constants as c
from script_runner.config.compat import AIRFLOW_3, DAG, asset_or_time_schedule
from script_runner.upload.rules import ASSET_NAME, UPLOADED_KEY, UploadWiring, uploaded_paths

if TYPE_CHECKING:
    from script_runner.upload.trigger import UploadTrigger

WATCHER_DAG_ID = c.DAG_ID + "_upload"
WAIT_TASK_ID = "wait_for_upload"


def upload_trigger(wiring: UploadWiring) -> UploadTrigger:
    """The watcher's trigger for ``wiring``.

    :param wiring: subscription and settle window (:func:`script_runner.upload.rules.upload_wiring`).
    """
    from script_runner.upload.trigger import UploadTrigger

    return UploadTrigger(
        project_id=wiring.project,
        subscription=wiring.subscription,
        settle=wiring.settle,
        max_wait=wiring.max_wait,
        poke_interval=wiring.poll,
    )


def upload_schedule(cron: str | None, wiring: UploadWiring | None) -> Any:
    """The runner DAG's schedule: ``cron`` alone, or (Airflow 3, wired) the upload asset, or both.

    :param cron: the time schedule (``SCRIPT_RUNNER_SCHEDULE``), None for none.
    :param wiring: the upload wiring, None when runs on upload are not wired.
    """
    if wiring is None or not AIRFLOW_3:
        return cron
    from airflow.sdk import Asset, AssetWatcher

    asset = Asset(name=ASSET_NAME, watchers=[AssetWatcher(name=ASSET_NAME, trigger=upload_trigger(wiring))])
    if cron is None:
        return [asset]
    return asset_or_time_schedule(cron, [asset])


def build_watcher_dag(wiring: UploadWiring) -> DAG:
    """Airflow 2.11's upload watcher: wait (deferred, no worker slot) for a settled burst, then trigger the
    runner DAG for the uploaded scripts. Continuous with one active run: the next wait starts at once.

    :param wiring: subscription and settle window.
    """
    from airflow.models.baseoperator import BaseOperator
    from airflow.operators.trigger_dagrun import TriggerDagRunOperator  # type: ignore[import-not-found]

    class WaitForUploadOperator(BaseOperator):  # type: ignore[misc]
        """Defers to the upload trigger; returns the uploaded scripts' paths."""

        def execute(self, context: Any) -> None:
            self.defer(trigger=upload_trigger(wiring), method_name="execute_complete")

        def execute_complete(self, context: Any, event: dict[str, Any]) -> list[str]:
            return uploaded_paths(event)

    with DAG(
        dag_id=WATCHER_DAG_ID,
        schedule="@continuous",
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        render_template_as_native_obj=True,
        tags=["script-runner"],
        doc_md="Starts a run of gcs_script_runner for each settled burst of uploaded scripts.",
        default_args={"owner": "script-runner"},
    ) as dag:
        wait = WaitForUploadOperator(task_id=WAIT_TASK_ID)
        run = TriggerDagRunOperator(
            task_id="run_uploaded",
            trigger_dag_id=c.DAG_ID,
            conf={UPLOADED_KEY: "{{ ti.xcom_pull(task_ids='" + WAIT_TASK_ID + "') }}", "reason": "upload"},
        )
        wait >> run
    return dag
