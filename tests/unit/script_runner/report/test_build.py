from __future__ import annotations

from typing import Any

import pytest

from script_runner.report.build import build_report, problems, to_markdown


def test_report_lists_every_script_with_attempts_and_rejections() -> None:
    shards = [[{"path": "a.sh"}, {"path": "b.sh"}, {"path": "c.sh"}]]
    attempts = {
        "a.sh": [
            {
                "status": "success",
                "exit_code": 0,
                "secs": 1.5,
                "started": "2026-11-24T10:00:00+00:00",
                "ended": "2026-11-24T10:00:02+00:00",
                "reason": "",
            }
        ],
        "b.sh": [{"status": "failed", "exit_code": 3, "secs": 1, "reason": "script exited with code 3"}] * 3,
    }
    report = build_report(
        dag_id="d",
        run_id="r",
        source="gs://b/data/",
        shards=shards,
        rejected=[{"path": "z.sh", "reason": "bad cpu", "line": 2, "fix": "cpu=500m"}],
        attempts=attempts,
        states={"a.sh": "success", "b.sh": "failed", "c.sh": "upstream_failed"},
        log_url="http://ui/dags/d/runs/r",
    )
    rows = {r["path"]: r for r in report["scripts"]}
    assert rows["a.sh"]["status"] == "success"
    assert rows["b.sh"]["attempts"] == 3
    assert rows["b.sh"]["exit_code"] == 3
    assert rows["c.sh"]["reason"].startswith("not run")
    assert rows["b.sh"]["log"] == "http://ui/dags/d/runs/r/tasks/run_scripts/mapped/1"
    assert report["summary"] == {"total": 4, "success": 1, "failed": 1, "upstream_failed": 1, "rejected": 1}
    md = to_markdown(report)
    assert "| z.sh | rejected |" in md
    assert "line 2: bad cpu" in md
    assert "10:00:00" in md


def test_report_links_each_script_to_its_task_log_in_markdown() -> None:
    report = build_report(
        dag_id="d",
        run_id="r",
        source="gs://b/data/",
        shards=[[{"path": "a.sh"}]],
        rejected=[],
        attempts={},
        states={"a.sh": "success"},
        log_url="http://ui/dags/d/runs/r",
    )
    assert "| [a.sh](http://ui/dags/d/runs/r/tasks/run_scripts/mapped/0) | success |" in to_markdown(report)


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        pytest.param({"total": 2, "success": 1, "skipped": 1}, {}, id="clean"),
        pytest.param({"total": 1, "oom_killed": 1}, {"oom_killed": 1}, id="oom-is-a-problem"),
        pytest.param(
            {"total": 3, "unschedulable": 1, "image_pull_error": 1, "timeout": 1},
            {"unschedulable": 1, "image_pull_error": 1, "timeout": 1},
            id="pod-faults-are-problems",
        ),
        pytest.param({"total": 2, "rejected": 1, "not_run": 1}, {"rejected": 1, "not_run": 1}, id="not-run"),
        pytest.param({"total": 0, "discovery": "failed"}, {}, id="text-keys-ignored"),
    ],
)
def test_problems_counts_every_status_but_success_and_skipped(
    summary: dict[str, Any], expected: dict[str, int]
) -> None:
    assert problems(summary) == expected


@pytest.mark.parametrize(
    ("state", "status", "reason"),
    [
        pytest.param("failed", "cancelled", "cancelled (marked failed outside the task)", id="marked-failed"),
        pytest.param("success", "success", "marked success outside the task", id="marked-success"),
        pytest.param(None, "cancelled", "stopped outside the task", id="state-unknown-airflow-2"),
    ],
)
def test_report_shows_a_task_stopped_from_outside_as_cancelled(
    state: str | None, status: str, reason: str
) -> None:
    # on_kill records the attempt as cancelled; the report names what Airflow's final state says happened
    # instead of the NotFoundException of the deleted pod.
    cancelled = {
        "status": "cancelled",
        "exit_code": None,
        "action": "cancel",
        "reason": "stopped outside the task (marked failed or success, or its worker shut down); pod deleted",
    }
    report = build_report(
        dag_id="d",
        run_id="r",
        source="gs://b/data/",
        shards=[[{"path": "a.sh"}]],
        rejected=[],
        attempts={"a.sh": [cancelled]},
        states={"a.sh": state} if state else {},
    )
    row = report["scripts"][0]
    assert row["status"] == status
    assert row["reason"].startswith(reason)
    assert "NotFound" not in row["reason"]
