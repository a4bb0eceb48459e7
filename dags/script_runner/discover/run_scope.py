"""Which discovered scripts one run launches: the trigger's ``only``/``exclude``, the uploaded scripts of a
run on upload (exact paths), schedules, dry run.

Discovery decides what is valid; this narrows it for a run. Scripts left out by ``only``/``exclude`` leave
no trace (not even when rejected: a run of just ``load.sh`` is not failed by another script). Scripts that
are not due, and every script of a dry run, get a report row ("not due", "dry run") instead of a pod.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from script_runner.discover import dependencies

if TYPE_CHECKING:
    from script_runner.config.params import RunOptions
    from script_runner.discover.discovery import DiscoveryResult
    from script_runner.discover.schedule import Window

NOT_DUE = "not due"
DRY_RUN = "dry run"


def matches(path: str, globs: list[str]) -> bool:
    """Whether a path matches one of the globs (the whole path, or the file name for a glob without ``/``).

    :param path: the script's path under the source.
    :param globs: ``etl/*.sh``, ``load.sh``, ...
    """
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path, g) or ("/" not in g and fnmatch.fnmatchcase(name, g)) for g in globs)


def narrow(result: DiscoveryResult, options: RunOptions, window: Window | None) -> int:
    """Cut ``result`` down to what this run launches; returns how many scripts ``only``/``exclude`` left out.

    :param result: discovery's result (changed in place).
    :param options: the trigger's options.
    :param window: the run's schedule window (None: every selected script is due).
    """

    uploaded = None if options.uploaded is None else set(options.uploaded)

    def wanted(path: str) -> bool:
        if uploaded is not None and path not in uploaded:  # run on upload: exactly the uploaded paths
            return False
        return (not options.only or matches(path, options.only)) and not matches(path, options.exclude)

    before = len(result.specs) + len(result.rejected) + len(result.held)
    result.specs = [s for s in result.specs if wanted(s["path"])]
    result.rejected = [r for r in result.rejected if wanted(r.path)]
    result.held = [h for h in result.held if wanted(h["path"])]
    left_out = before - len(result.specs) - len(result.rejected) - len(result.held)
    if window is not None:
        due = []
        for spec in result.specs:
            schedule = spec.get("schedule")
            when = window.first_time(schedule) if schedule else window.end
            if when is None:
                nxt = window.next_time(str(schedule)).strftime("%Y-%m-%dT%H:%M:%SZ")
                reason = f"schedule={schedule}: no cron time in {window.describe()} ({window.why})"
                reason += f"; next {nxt}"
                result.held.append({"path": spec["path"], "status": NOT_DUE, "reason": reason})
            elif schedule and window.fires_again(schedule, when):
                finer = (
                    f"schedule={schedule} fires more than once in {window.describe()}: it runs once per run"
                )
                finer += " (the DAG's SCRIPT_RUNNER_SCHEDULE is coarser)"
                due.append({**spec, "notes": [*spec.get("notes", []), finer]})
            else:
                due.append(spec)
        result.specs = due
    result.specs = dependencies.within(result.specs)
    if options.dry_run:
        order = dependencies.levels(result.specs)
        for spec in result.specs:
            after = spec.get("after") or []
            reason = f"would run at level {order[spec['path']]}" + (
                f", after {', '.join(after)}" if after else ""
            )
            result.held.append({"path": spec["path"], "status": DRY_RUN, "reason": reason})
        result.specs = []
    return left_out


def held_row(row: dict[str, Any]) -> dict[str, Any]:
    """A report row for a script that was not launched (same keys as a launched script's row).

    :param row: ``{"path", "status", "reason"}`` from discovery.
    """
    return {
        "path": row["path"],
        "status": row["status"],
        "attempts": 0,
        "duration_secs": 0,
        "started": "",
        "ended": "",
        "exit_code": None,
        "reason": row.get("reason", ""),
        "history": [],
        "task": "",
        "log": "",
    }
