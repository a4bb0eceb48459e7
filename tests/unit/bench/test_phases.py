"""bench.phases splits a deferrable task's log into its two task processes and the wait between them."""

from __future__ import annotations

import json
from pathlib import Path

from bench.phases import deferred_phases, summarize

# (seconds after the start, event) of one deferrable first try, as Airflow 3's task log has them.
EVENTS = [
    (0.0, "::group::Pre Execute"),
    (0.3, "Worker startup parse complete"),
    (0.5, "::endgroup::"),
    (1.5, "Pausing task as DEFERRED. "),
    (1.6, "::endgroup::"),
    (6.0, "::group::Pre Execute"),
    (6.2, "Worker startup parse complete"),
    (6.4, "::endgroup::"),
    (7.0, "Deleting pod: x"),
    (7.1, "::endgroup::"),
]


def _log(path: Path, events: list[tuple[float, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"timestamp": f"2026-12-05T08:00:{10 + at:06.3f}Z", "event": event})
        for at, event in events
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_deferrable_log_splits_into_launch_wait_and_resume(tmp_path: Path) -> None:
    got = deferred_phases(_log(tmp_path / "a.log", EVENTS))
    assert got is not None
    assert {k: round(v, 2) for k, v in got.items()} == {
        "parse": 0.3,
        "launch": 1.2,
        "defer_exit": 0.1,
        "deferred": 4.4,
        "parse2": 0.2,
        "resume": 0.9,
        "total": 7.1,
    }


def test_a_log_that_never_deferred_is_left_out(tmp_path: Path) -> None:
    assert deferred_phases(_log(tmp_path / "a.log", EVENTS[:3])) is None
    _log(tmp_path / "t" / "map_index=0" / "attempt=1.log", EVENTS)
    _log(tmp_path / "t" / "map_index=1" / "attempt=1.log", EVENTS[:4])
    summary = summarize(tmp_path / "t", deferrable=True)
    assert summary["instances"] == 1
    assert summary["deferred_s"] == 4.4
