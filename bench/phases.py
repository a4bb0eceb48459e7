"""Per-phase time of a DAG run's mapped task instances, from their task logs (medians over the instances).

Phases: ``parse`` (task start to "Worker startup parse complete"), ``pre_execute`` (to the end of the
Pre Execute group: mapped argument resolution, operator construction), ``to_pod`` (to the pod found or
created, pod request built), ``pod`` (to "Deleting pod": the pod's run and its logs), ``after_pod`` (to the
task's end: ledger write, post execute). ``python -m bench.phases LOG_DIR`` prints one JSON object;
LOG_DIR is ``.../dag_id=<dag>/run_id=<run>/task_id=<task>``.

A deferrable task's log holds two task processes: ``--deferrable`` splits it into ``parse`` (the first
process's), ``launch`` (to "Pausing task as DEFERRED": the pod created, the trigger handed over),
``defer_exit`` (to that process's last line), ``deferred`` (the gap: the trigger watching the pod, the
scheduler queueing the resumption, the new process starting), ``parse2`` and ``resume`` (logs, pod
deletion, the after-the-pod work).
"""

from __future__ import annotations

import json
import statistics
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

MARKS = {
    "parsed": "Worker startup parse complete",
    "to_pod": "Found matching pod",
    "deleting": "Deleting pod",
}


def _events(path: Path) -> list[tuple[float, str]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            data = json.loads(line)
            when = datetime.fromisoformat(str(data["timestamp"]).replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError, TypeError):
            continue
        out.append((when, str(data.get("event") or "")))
    return out


def phases(path: Path) -> dict[str, float] | None:
    """The phases of one task log (None when a mark is missing, e.g. a failed or skipped task)."""
    events = _events(path)
    if not events:
        return None
    start, end = events[0][0], events[-1][0]
    found: dict[str, float] = {}
    for when, text in events:
        for key, mark in MARKS.items():
            if key not in found and text.startswith(mark):
                found[key] = when
    pre_end = next((w for w, t in events if t == "::endgroup::" and w >= found.get("parsed", end)), None)
    if len(found) < len(MARKS) or pre_end is None:
        return None
    return {
        "parse": found["parsed"] - start,
        "pre_execute": pre_end - found["parsed"],
        "to_pod": found["to_pod"] - pre_end,
        "pod": found["deleting"] - found["to_pod"],
        "after_pod": end - found["deleting"],
        "total": end - start,
    }


DEFERRED_KEYS = ("parse", "launch", "defer_exit", "deferred", "parse2", "resume", "total")


def deferred_phases(path: Path) -> dict[str, float] | None:
    """The phases of one deferrable task log (None when a mark is missing)."""
    events = _events(path)
    parsed = [w for w, t in events if t.startswith(MARKS["parsed"])]
    groups = [w for w, t in events if t == "::group::Pre Execute"]
    paused = next((w for w, t in events if t.startswith("Pausing task as DEFERRED")), None)
    if len(parsed) < 2 or len(groups) < 2 or paused is None:
        return None
    second_start = groups[1]
    first_end = max(w for w, _ in events if w < second_start)
    start, end = events[0][0], events[-1][0]
    return {
        "parse": parsed[0] - start,
        "launch": paused - parsed[0],
        "defer_exit": first_end - paused,
        "deferred": second_start - first_end,
        "parse2": parsed[1] - second_start,
        "resume": end - parsed[1],
        "total": end - start,
    }


def summarize(folder: Path, *, deferrable: bool = False) -> dict[str, Any]:
    """Median of each phase over the task's instances (first attempts)."""
    split = deferred_phases if deferrable else phases
    keys = DEFERRED_KEYS if deferrable else ("parse", "pre_execute", "to_pod", "pod", "after_pod", "total")
    rows = [p for p in (split(f) for f in sorted(folder.glob("map_index=*/attempt=1.log"))) if p]
    out: dict[str, Any] = {"task_logs": str(folder), "instances": len(rows)}
    for key in keys:
        out[f"{key}_s"] = round(statistics.median(r[key] for r in rows), 2) if rows else None
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--deferrable"]
    print(json.dumps(summarize(Path(args[0]), deferrable="--deferrable" in sys.argv)))
