"""Bodies of the discover and report tasks (run inside Airflow tasks only, never at parse time)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from script_runner.config import constants as c
from script_runner.config.compat import (
    AirflowFailException,
    dag_timezone,
    get_current_context,
    task_states,
    ui_task_link_template,
)
from script_runner.config.params import RunOptions, run_options
from script_runner.config.settings_loader import fallback_settings, load_settings_from_airflow
from script_runner.discover.dependencies import locate
from script_runner.discover.discovery import discover, shard
from script_runner.discover.header_cache import HeaderCache
from script_runner.discover.run_scope import narrow
from script_runner.discover.schedule import Window, run_window, zone
from script_runner.discover.shards import max_map_length
from script_runner.exceptions import DiscoveryError, ScriptRunnerError, SettingsError
from script_runner.report.build import build_report, problems, to_markdown
from script_runner.report.html import to_html
from script_runner.report.notify import alert_events, failure_message, read_events, send
from script_runner.report.sizing import SizingHistory, apply_sizing, platform_bend
from script_runner.run.ledger import Ledger
from script_runner.upload.rules import current_conf

if TYPE_CHECKING:
    from google.cloud.storage import Client

    from script_runner.config.settings import RunnerSettings

log = logging.getLogger(__name__)


def gcs_client(settings: RunnerSettings) -> Client:
    """Storage client with the Airflow connection's credentials (the google provider's hook)."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    client: Client = GCSHook(gcp_conn_id=settings.gcp_conn_id).get_conn()
    return client


def run_discovery(
    *, shards: int, dag_schedule: str | None = None, run_task_ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """List, validate and plan; narrow to what this run launches (trigger options, schedules, dry run).

    Returns shard 0 (the list the first run task maps over) and pushes the XCom keys ``shard_<i>`` for the
    other shards, ``rejected``, ``held`` (scripts with a report row but no pod), ``run`` (the trigger's
    options) and ``summary``. Airflow maps only over return values, hence the split.

    :param shards: how many mapped run tasks the DAG has.
    :param dag_schedule: the DAG's schedule setting (scripts' schedules are checked against its runs).
    :param run_task_ids: the mapped run task of each shard (waiting scripts look their dependencies up).
    """
    settings = load_settings_from_airflow()
    ctx = get_current_context()
    options = run_options(ctx.get("params"), current_conf(ctx))
    client = gcs_client(settings) if settings.source_scheme == "gs" else None
    cache = None
    if client is not None:
        cache = HeaderCache(
            client,
            bucket=settings.effective_state_bucket,
            name=f"{settings.state_root}/cache/headers.json",  # worker-only prefix (operator guide, Security)
        )  # loaded by discover(), alongside the listing
    ti = ctx["ti"]
    run_info: dict[str, Any] = {"reason": options.reason, "dry_run": options.dry_run, "only": options.only}
    try:
        window = _window(ctx, dag_schedule, options)
        if window is not None:
            run_info["window"] = f"{window.describe()} ({window.why})"
        result = discover(settings, client=client, cache=cache)
        left_out = narrow(result, options, window)
        # The items carry the scripts' specs only: every mapped task pulls the whole list, so the run's
        # settings are not repeated in each; a task reads the current settings itself (run/plan_check.py).
        planned = shard(result.specs, shards=shards, max_map_length=max_map_length())
        locate(planned, run_task_ids or [c.RUN_TASK_ID])
    except ScriptRunnerError as exc:
        # Nothing is launched; the report task (all_done) still runs and states why.
        ti.xcom_push(key="discovery_error", value=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        ti.xcom_push(key="run", value=run_info)  # the report shows the reason whatever happened
    summary = {**result.summary(), "left_out": left_out, "source": settings.source, "shards": shards}
    log.info("[runner] discovery %s", " ".join(f"{k}={v}" for k, v in summary.items()))
    for spec in result.specs:
        log.info(
            "[runner] plan script=%s generation=%s cpu=%s memory=%s timeout=%ss retries=%s%s",
            spec["path"],
            spec.get("generation", ""),
            spec["cpu"],
            spec["memory"],
            spec["timeout"],
            spec["retries"],
            (" notes=" + ";".join(spec["notes"])) if spec.get("notes") else "",
        )
    # Empty shards push nothing (each push is an API round trip): their producers find no list and skip.
    for i, specs in enumerate(planned[1:], start=1):
        if specs:
            ti.xcom_push(key=c.producer_task_id(i), value=specs)
    ti.xcom_push(key="rejected", value=[r.model_dump(mode="json") for r in result.rejected])
    ti.xcom_push(key="held", value=result.held)
    ti.xcom_push(key="summary", value=summary)
    return planned[0]


def _window(ctx: Any, dag_schedule: str | None, options: RunOptions) -> Window | None:
    """The run's schedule window from its type and data interval (None: every selected script runs).

    Cron times (the DAG's and each ``schedule=``) are read in the DAG's time zone, as Airflow reads its cron.
    """
    dag_run = ctx.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    raw_zone = dag_timezone(ctx)
    try:
        tz = zone(raw_zone)
    except ValueError as exc:
        raise DiscoveryError(
            f"the DAG's time zone {raw_zone!r} is not one schedules can be read in: {exc} (fix: set "
            "Airflow's [core] default_timezone to a zone name such as Europe/Berlin or UTC)"
        ) from exc
    try:
        return run_window(
            run_type=str(getattr(run_type, "value", run_type) or ""),
            start=ctx.get("data_interval_start"),
            end=ctx.get("data_interval_end"),
            dag_schedule=dag_schedule,
            due_at=options.due_at,
            tz=tz,
        )
    except ValueError as exc:
        raise DiscoveryError(
            f"due_at={options.due_at!r} is not a time: {exc} (fix: write e.g. 2026-12-07T06:00:00Z)"
        ) from exc


def run_report(*, shards: int, run_task_ids: list[str]) -> dict[str, Any]:
    """Write the run report to GCS and the log; fail the task if any script failed or was rejected."""
    ctx = get_current_context()
    ti = ctx["ti"]
    run_id = ctx["run_id"]
    settings_error = ""
    try:
        settings = load_settings_from_airflow()
    except SettingsError as exc:
        # Still write the report (nothing is lost): to where the preset and environment alone point.
        settings_error = str(exc)
        log.error("[runner] settings are invalid, reporting with the defaults: %s", exc)
        settings = fallback_settings()
    planned = [
        ti.xcom_pull(task_ids=c.DISCOVER_TASK_ID, key="return_value" if i == 0 else f"shard_{i}") or []
        for i in range(shards)
    ]
    rejected = ti.xcom_pull(task_ids=c.DISCOVER_TASK_ID, key="rejected") or []
    held = ti.xcom_pull(task_ids=c.DISCOVER_TASK_ID, key="held") or []
    run_info = ti.xcom_pull(task_ids=c.DISCOVER_TASK_ID, key="run") or {}
    summary = ti.xcom_pull(task_ids=c.DISCOVER_TASK_ID, key="summary")
    client = gcs_client(settings)
    bucket = settings.effective_state_bucket
    ledger = Ledger(client, bucket=bucket, root=settings.state_root)
    states = _script_states(ti, run_id, planned, run_task_ids)
    try:
        attempts = ledger.read_settled(run_id, states)
    except Exception:
        log.warning("could not read the attempt ledger", exc_info=True)
        attempts = {}
    try:
        events = read_events(client, bucket=bucket, root=settings.state_root, run_id=run_id)
    except Exception:
        log.warning("could not read script events", exc_info=True)
        events = {}
    report = build_report(
        dag_id=ti.dag_id,
        run_id=run_id,
        source=settings.source,
        shards=planned,
        rejected=rejected,
        attempts=attempts,
        states=states,
        log_url=ui_task_link_template(ti.dag_id, run_id),
        held=held,
        run=run_info,
    )
    for row in report["scripts"]:
        row["events"] = events.get(row["path"], [])
    history = SizingHistory(client, bucket=bucket, root=settings.state_root)
    apply_sizing(report, attempts, history, bend=platform_bend(settings))
    bad = problems(report["summary"])
    if summary is None:
        error = ti.xcom_pull(task_ids=c.DISCOVER_TASK_ID, key="discovery_error")
        report["summary"]["discovery"] = f"failed: {error or 'see the discover task log'}"
    if settings_error:
        report["summary"]["settings"] = f"invalid: {settings_error}"
    markdown = to_markdown(report)
    base = f"{settings.state_root}/reports/{run_id}"
    bucket_obj = client.bucket(bucket)
    bucket_obj.blob(base + ".json").upload_from_string(
        json.dumps(report, indent=2), content_type="application/json"
    )
    bucket_obj.blob(base + ".md").upload_from_string(markdown, content_type="text/markdown")
    bucket_obj.blob(base + ".html").upload_from_string(to_html(report), content_type="text/html")
    log.info("[runner] report gs://%s/%s.json\n%s", bucket, base, markdown)
    alerts = alert_events(events)
    if summary is None or bad or alerts:
        message = failure_message(report)
        if alerts:
            message += "\nscript events:\n" + "\n".join(alerts[:20])
        send(settings, ctx, message + f"\nreport: gs://{bucket}/{base}.md")
    if (summary is None or bad) and settings.fail_run_on_problems:
        raise AirflowFailException(
            f"run has problems ({', '.join(f'{k}={v}' for k, v in bad.items()) or 'discovery failed'}); "
            f"report at gs://{bucket}/{base}.md"
        )
    return report["summary"]  # type: ignore[no-any-return]


def _script_states(
    ti: Any, run_id: str, planned: list[list[dict[str, Any]]], run_task_ids: list[str]
) -> dict[str, str | None]:
    states: dict[str, str | None] = {}
    for task_id, shard_specs in zip(run_task_ids, planned, strict=False):
        if not shard_specs:
            continue
        # One task per call: keys are "<task_id>_<map_index>", or the bare task id of an unexpanded task, so
        # shard 1's skipped "run_scripts_1" would read as map index 1 of "run_scripts" in a joint answer.
        by_key = task_states(ti, run_id=run_id, task_ids=[task_id])
        if by_key is None:  # Airflow 3.0 only (see compat.task_states): the ledger alone tells
            log.warning(
                "[runner] task states unavailable on this Airflow; the report uses the attempt ledger only"
            )
            return {}
        for index, spec in enumerate(shard_specs):
            state = by_key.get(f"{task_id}_{index}")
            states[spec["path"]] = str(state.value if hasattr(state, "value") else state) if state else None
    return states
