"""Issue 11, item 15: a task marked failed by a user while its pod runs.

Airflow calls the operator's on_kill: the pod must be deleted, the attempt recorded as cancelled (not as an
``error`` with the deleted pod's ``NotFoundException: (404)``) and the report must say so.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.e2e.harness import DAG_ID, RunResult

SCRIPTS = Path(__file__).parent / "scripts" / "cancel"


def _wait(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_cancel_a_task_marked_failed_while_its_pod_runs_is_reported_as_cancelled(runner: Any) -> None:
    stack = runner.stack
    prefix = "e2e-cancel/"
    runner.upload(SCRIPTS, prefix)
    settings = {"source": f"gs://{runner.bucket}/{prefix}", "state_root": runner.state_root}
    stack.set_variable("script_runner_settings", json.dumps(settings))
    stack.wait_dag_parsed(DAG_ID, timeout=120)
    stack.unpause(DAG_ID)
    run_id = stack.trigger_dag(DAG_ID, {})
    run = RunResult(runner, run_id, "running")

    def running_pod() -> bool:
        return any(p.get("phase") == "Running" for p in runner.double_state()["pods"])

    _wait("the pod to run", running_pod, 180)
    time.sleep(3)  # the script is well under way (its log is read after the run)
    ti = run.mapped_tasks()["long.sh"]
    stack.request(
        "PATCH",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/{ti['map_index']}",
        {"new_state": "failed"},
    )
    state = stack.wait_dag_run(DAG_ID, run_id, timeout=180)
    assert state == "failed"  # the report fails the run: a cancelled script is not a clean result

    assert runner.pods_left() == []  # on_kill deleted the pod
    # the pod's process is gone (only processes in this stack's pod dirs: other work may run on the host)
    assert [p for p in runner.processes_left() if "/kube/pod-" in p] == []
    row = {r["path"]: r for r in run.report()["scripts"]}["long.sh"]
    assert row["status"] == "cancelled", row
    assert row["reason"].startswith("cancelled (marked failed outside the task)"), row
    assert "NotFound" not in json.dumps(row)
    assert row["history"] == ["cancelled(None)"], row  # one attempt, recorded once
    tis = run.mapped_tasks()
    assert tis["long.sh"]["state"] == "failed"
    assert tis["long.sh"]["try_number"] == 1  # no retry after a user's "failed"
    log = run.log("long.sh")
    assert "E2E-CANCEL started" in log
    assert "E2E-CANCEL finished" not in log
    assert "status=cancelled" in log
