"""Bodies of the discover and report tasks (run inside Airflow tasks only, never at parse time)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from script_runner import constants as c
from script_runner.compat import (
    AirflowFailException,
    get_current_context,
    task_states,
    ui_task_link_template,
)
from script_runner.discovery import discover, shard
from script_runner.exceptions import ScriptRunnerError, SettingsError
from script_runner.header_cache import HeaderCache
from script_runner.ledger import Ledger
from script_runner.notify import alert_events, failure_message, read_events, send
from script_runner.report import build_report, problems, to_markdown
from script_runner.settings import RunnerSettings, fallback_settings, load_settings_from_airflow

if TYPE_CHECKING:
    from google.cloud.storage import Client

log = logging.getLogger(__name__)


def gcs_client(settings: RunnerSettings) -> Client:
    """Storage client with the Airflow connection's credentials (the google provider's hook)."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    client: Client = GCSHook(gcp_conn_id=settings.gcp_conn_id).get_conn()
    return client


def max_map_length() -> int:
    """Airflow's [core] max_map_length (what one mapped task can expand to)."""
    try:
        from airflow.configuration import conf

        return conf.getint("core", "max_map_length", fallback=c.DEFAULT_MAX_MAP_LENGTH)
    except Exception:  # pragma: no cover - config unavailable outside Airflow
        return c.DEFAULT_MAX_MAP_LENGTH


def run_discovery(*, shards: int) -> list[dict[str, Any]]:
    """List, validate and plan.

    Returns shard 0 (the list the first run task maps over) and pushes the XCom keys ``shard_<i>`` for the
    other shards, ``rejected`` and ``summary``. Airflow maps only over return values, hence the split.
    """
    settings = load_settings_from_airflow()
    client = gcs_client(settings) if settings.source_scheme == "gs" else None
    cache = None
    if client is not None:
        cache = HeaderCache(
            client,
            bucket=settings.effective_state_bucket,
            name=f"{settings.state_root}/cache/headers.json",  # worker-only prefix (README, Security)
        )  # loaded by discover(), alongside the listing
    ti = get_current_context()["ti"]
    try:
        result = discover(settings, client=client, cache=cache)
        planned = shard(result.specs, shards=shards, max_map_length=max_map_length())
    except ScriptRunnerError as exc:
        # Nothing is launched; the report task (all_done) still runs and states why.
        ti.xcom_push(key="discovery_error", value=f"{type(exc).__name__}: {exc}")
        raise
    summary = {**result.summary(), "source": settings.source, "shards": shards}
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
    for i, specs in enumerate(planned[1:], start=1):
        ti.xcom_push(key=f"shard_{i}", value=specs)
    ti.xcom_push(key="rejected", value=[r.model_dump(mode="json") for r in result.rejected])
    ti.xcom_push(key="summary", value=summary)
    return planned[0]


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
    )
    for row in report["scripts"]:
        row["events"] = events.get(row["path"], [])
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
    by_key = task_states(ti, run_id=run_id, task_ids=run_task_ids)
    if by_key is None:  # Airflow 3.0 only (see compat.task_states): the ledger alone tells
        log.warning(
            "[runner] task states unavailable on this Airflow; the report uses the attempt ledger only"
        )
        return {}
    states: dict[str, str | None] = {}
    for task_id, shard_specs in zip(run_task_ids, planned, strict=False):
        for index, spec in enumerate(shard_specs):
            state = by_key.get(f"{task_id}_{index}")
            states[spec["path"]] = str(state.value if hasattr(state, "value") else state) if state else None
    return states
