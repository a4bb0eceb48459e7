"""The run report: one row per script (launched, skipped or rejected), as JSON and Markdown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from script_runner.policy import Status

# A script's clean results; every other status is a problem (fails the run, notifies).
CLEAN_STATUSES = frozenset({Status.SUCCESS.value, Status.SKIPPED.value})
# Final Airflow task states that mean the script did not run to a result of its own.
_NOT_RUN = {
    "upstream_failed": "not run: discovery failed",
    "removed": "removed",
    "failed": "ended before any attempt was recorded (marked failed outside the task, or its worker lost)",
    None: "not run",
}
# A cancelled attempt (on_kill) explained by the task's final state, when Airflow tells it (3.1+). Who did
# it is in Airflow's audit log only, which a task cannot read on Airflow 3.
_CANCELLED = {
    "failed": "cancelled (marked failed outside the task); pod deleted",
    "success": "marked success outside the task while its pod ran; pod deleted",
}


def build_report(
    *,
    dag_id: str,
    run_id: str,
    source: str,
    shards: list[list[dict[str, Any]]],
    rejected: list[dict[str, Any]],
    attempts: dict[str, list[dict[str, Any]]],
    states: dict[str, str | None],
    log_url: str = "",
) -> dict[str, Any]:
    """Assemble the report.

    :param shards: discovery's planned scripts per run task (index in the list = map index).
    :param attempts: the ledger: attempts per script path.
    :param states: final Airflow state per script path (when known).
    :param log_url: UI link to a task's log: a template with ``{task_id}`` and ``{map_index}`` (see
        ``compat.ui_task_link_template``), or a run's base such as ``http://host/dags/<dag>/runs/<run>``.
    """
    rows = []
    for shard_index, shard in enumerate(shards):
        for map_index, spec in enumerate(shard):
            path = spec["path"]
            rows.append(
                _row(
                    path,
                    attempts.get(path, []),
                    states.get(path),
                    shard_index=shard_index,
                    map_index=map_index,
                    multi=len(shards) > 1,
                    log_url=log_url,
                )
            )
    rows.sort(key=lambda r: r["path"])
    rejected_rows = [
        {
            "path": r["path"],
            "status": "rejected",
            "reason": r["reason"],
            "line": r.get("line"),
            "fix": r.get("fix", ""),
        }
        for r in sorted(rejected, key=lambda r: r["path"])
    ]
    counts: dict[str, int] = {}
    for row in [*rows, *rejected_rows]:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "source": source,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": {"total": len(rows) + len(rejected_rows), **counts},
        "scripts": rows,
        "rejected": rejected_rows,
    }


def _row(
    path: str,
    tries: list[dict[str, Any]],
    state: str | None,
    *,
    shard_index: int,
    map_index: int,
    multi: bool,
    log_url: str,
) -> dict[str, Any]:
    last = tries[-1] if tries else {}
    status = _status(state, last)
    task_id = f"run_scripts_{shard_index}" if multi else "run_scripts"
    return {
        "path": path,
        "status": status,
        "attempts": len(tries),
        "duration_secs": round(sum(float(t.get("secs", 0)) for t in tries), 2),
        "started": tries[0].get("started", "") if tries else "",
        "ended": last.get("ended", ""),
        "exit_code": last.get("exit_code"),
        "reason": _reason(state, last, bool(tries)),
        "history": [f"{t.get('status')}({t.get('exit_code')})" for t in tries],
        "task": f"{task_id}[{map_index}]",
        "log": _log_link(log_url, task_id, map_index),
    }


def _log_link(log_url: str, task_id: str, map_index: int) -> str:
    if not log_url:
        return ""
    if "{task_id}" in log_url:
        return log_url.format(task_id=task_id, map_index=map_index)
    return f"{log_url}/tasks/{task_id}/mapped/{map_index}"


def _reason(state: str | None, last: dict[str, Any], tried: bool) -> str:
    if last.get("status") == Status.CANCELLED.value and state in _CANCELLED:
        return _CANCELLED[str(state)]
    return str(last.get("reason", "") or ("" if tried else _NOT_RUN.get(state, "")))


def _status(state: str | None, last: dict[str, Any]) -> str:
    if state in ("success", "failed", "skipped", "upstream_failed"):
        if state == "failed" and last.get("status") not in (None, Status.SUCCESS.value):
            return str(last["status"])  # the specific failure: failed, oom_killed, unschedulable, ...
        return str(state)
    return str(last.get("status") or state or "not_run")


def problems(summary: dict[str, Any]) -> dict[str, int]:
    """Counts of every status that is not a clean result: failed, oom_killed, unschedulable, rejected, ...

    Only ``success`` and ``skipped`` (done-marker, skip code) are clean; any other status is a problem.
    """
    return {
        k: v
        for k, v in summary.items()
        if k != "total" and k not in CLEAN_STATUSES and isinstance(v, int) and not isinstance(v, bool)
    }


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page (what `make demo` prints)."""
    out = [
        f"# Script run report: {report['dag_id']} / {report['run_id']}",
        "",
        f"Source: `{report['source']}` · generated {report['generated_at']}",
        "",
        "Summary: " + ", ".join(f"{k}={v}" for k, v in report["summary"].items()),
        "",
        "| script | status | attempts | secs | exit | started | ended | reason |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for row in report["scripts"]:
        script = f"[{row['path']}]({row['log']})" if row.get("log") else row["path"]
        out.append(
            f"| {script} | {row['status']} | {row['attempts']} | {row['duration_secs']} | "
            f"{'' if row['exit_code'] is None else row['exit_code']} | {_clock(row['started'])} | "
            f"{_clock(row['ended'])} | {_cell(row['reason'])} |"
        )
    for row in report["rejected"]:
        where = f"line {row['line']}: " if row.get("line") else ""
        out.append(
            f"| {row['path']} | rejected | 0 | 0 |  |  |  | {_cell(where + row['reason'])} "
            f"(fix: {_cell(row['fix'])}) |"
        )
    return "\n".join(out) + "\n"


def _clock(stamp: str) -> str:
    return stamp[11:19] if len(stamp) >= 19 else stamp


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]
