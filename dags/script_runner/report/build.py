"""The run report: one row per script (launched, skipped or rejected), as JSON and Markdown.

The HTML page is :mod:`script_runner.report.html`; sizing figures and suggestions
:mod:`script_runner.report.sizing`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from script_runner.config.constants import run_task_id
from script_runner.config.units import format_cpu
from script_runner.discover.run_scope import DRY_RUN, NOT_DUE, held_row
from script_runner.report.sizing import cores_used, mebibytes
from script_runner.run.policy import Status

# A script's clean results; every other status is a problem (fails the run, notifies).
CLEAN_STATUSES = frozenset({Status.SUCCESS.value, Status.SKIPPED.value, NOT_DUE, DRY_RUN})
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
    held: list[dict[str, Any]] | None = None,
    run: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the report.

    :param shards: discovery's planned scripts per run task (index in the list = map index).
    :param held: scripts discovery did not launch, with a row each (skipped, not due, dry run).
    :param run: the trigger's options (reason, dry_run, only) and the schedule window, when known.
    :param attempts: the ledger: attempts per script path.
    :param states: final Airflow state per script path (when known).
    :param log_url: UI link to a task's log: a template with ``{task_id}`` and ``{map_index}`` (see
        ``compat.ui_task_link_template``), or a run's base such as ``http://host/dags/<dag>/runs/<run>``.
    """
    rows = []
    for shard_index, shard in enumerate(shards):
        for map_index, spec in enumerate(shard):
            path = spec["path"]
            row = _row(
                path,
                attempts.get(path, []),
                states.get(path),
                shard_index=shard_index,
                map_index=map_index,
                multi=len(shards) > 1,
                log_url=log_url,
            )
            rows.append({**row, **_sizing(spec, attempts.get(path, []))})
    rows.extend(held_row(h) for h in held or [])
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
        "run": dict(run or {}),
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
    del multi  # shard 0 is run_scripts whatever the number of shards
    task_id = run_task_id(shard_index)
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


def _sizing(spec: dict[str, Any], tries: list[dict[str, Any]]) -> dict[str, Any]:
    """What the script asked and used (peak memory: highest attempt; CPU seconds: all attempts), and each
    attempt on its own (the HTML timeline draws them)."""
    peaks = [int(t["mem_peak_bytes"]) for t in tries if isinstance(t.get("mem_peak_bytes"), int)]
    cpu = [float(t["cpu_secs"]) for t in tries if isinstance(t.get("cpu_secs"), int | float)]
    cores = [c for t in tries if (c := cores_used(t)) is not None]
    return {
        "memory": spec.get("memory", ""),
        "cpu": spec.get("cpu", ""),
        "mem_peak_bytes": max(peaks) if peaks else None,
        "cpu_secs": round(sum(cpu), 3) if cpu else None,
        # The busiest attempt's average cores (of those that ran the script): comparable with "cpu".
        "cpu_cores": round(max(cores), 3) if cores else None,
        "usage": next((str(t["usage"]) for t in reversed(tries) if t.get("usage")), ""),
        "tries": [
            {
                "try": index,
                "status": t.get("status"),
                "exit_code": t.get("exit_code"),
                "started": t.get("started", ""),
                "ended": t.get("ended", ""),
                "secs": t.get("secs"),
                "memory": t.get("memory", ""),
                "mem_peak_bytes": t.get("mem_peak_bytes"),
                "cpu_secs": t.get("cpu_secs"),
            }
            for index, t in enumerate(tries, start=1)
        ],
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
        *_run_lines(report.get("run") or {}),
        "| script | status | attempts | secs | exit | started | ended | cpu asked / used | "
        "memory asked / peak | reason |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- | --- | --- |",
    ]
    for row in report["scripts"]:
        script = f"[{row['path']}]({row['log']})" if row.get("log") else row["path"]
        out.append(
            f"| {script} | {row['status']} | {row['attempts']} | {row['duration_secs']} | "
            f"{'' if row['exit_code'] is None else row['exit_code']} | {_clock(row['started'])} | "
            f"{_clock(row['ended'])} | {cpu_cell(row)} | {memory_cell(row)} | {_cell(row['reason'])} |"
        )
    for row in report["rejected"]:
        where = f"line {row['line']}: " if row.get("line") else ""
        out.append(
            f"| {row['path']} | rejected | 0 | 0 |  |  |  |  |  | {_cell(where + row['reason'])} "
            f"(fix: {_cell(row['fix'])}) |"
        )
    hints = [row for row in report["scripts"] if row.get("suggestion")]
    if hints:
        out += ["", "Sizing suggestions (from the usage history in the state bucket):", ""]
        for row in hints:
            hint = row["suggestion"]
            out.append(f"- {row['path']}: `# runner: {hint['directive']}` ({_cell(hint['reason'])})")
    return "\n".join(out) + "\n"


def _run_lines(run: dict[str, Any]) -> list[str]:
    """What the trigger asked (reason, dry run, only) and the schedule window, one line each."""
    out = []
    if run.get("dry_run"):
        out.append("**Dry run**: nothing was launched; the rows say what would have run, in which order.")
    if run.get("reason"):
        out.append(f"Reason: {_cell(str(run['reason']))}")
    if run.get("only"):
        out.append("Only: " + ", ".join(f"`{g}`" for g in run["only"]))
    if run.get("window"):
        out.append(f"Schedules checked against {run['window']}")
    return [*(line + "  " for line in out), ""] if out else []


def cpu_cell(row: dict[str, Any]) -> str:
    """``250m / 120m``: the cores asked and the cores used on average by the busiest attempt that ran the
    script (its CPU seconds over its own duration), blank when unknown.

    :param row: a script row of the report.
    """
    cores = row.get("cpu_cores")
    used = "" if cores is None else format_cpu(Decimal(str(cores)))
    return f"{row.get('cpu', '')} / {used}" if used else str(row.get("cpu", ""))


def memory_cell(row: dict[str, Any]) -> str:
    """``256Mi / 59Mi``: the memory asked and the highest peak of the run's attempts.

    :param row: a script row of the report.
    """
    peak = mebibytes(row.get("mem_peak_bytes"))
    return f"{row.get('memory', '')} / {peak}" if peak else str(row.get("memory", ""))


def _clock(stamp: str) -> str:
    return stamp[11:19] if len(stamp) >= 19 else stamp


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]
