"""Issue 25: a run task holds its XCom plan against the current settings before any pod.

A stale plan is the case a user can make without writing XCom by hand: a script ran as ``writer`` (bound to
its folder), then the operator took the binding away, then someone cleared just the script's task. Airflow
hands the cleared task the plan discovery made before the change; the task must refuse it with the fix and
start no pod, and the report must say why.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import DAG_ID

pytestmark = [pytest.mark.e2e]

SCRIPTS = Path(__file__).parent / "scripts" / "plancheck"
PREFIX = "e2e-plancheck/"
SCRIPT = "team-a/job.sh"
BOUND = {"identity_bindings": {"team-a/": {"service_accounts": ["writer"]}}}


def test_plan_check_a_cleared_task_with_a_stale_plan_is_refused_without_a_pod(runner: Any) -> None:
    run = runner.run_scripts(SCRIPTS, prefix=PREFIX, settings=BOUND, timeout=300)
    assert run.state == "success", run.report_markdown()
    assert "E2E-PLANCHECK ran as writer" in run.log(SCRIPT)

    # The operator takes writer away from team-a/ (the rest of the settings as they were).
    settings = {"source": f"gs://{runner.bucket}/{PREFIX}", "state_root": runner.state_root}
    unbound = {"identity_bindings": {"team-b/": {"service_accounts": ["writer"]}}}
    runner.stack.set_variable("script_runner_settings", json.dumps({**settings, **unbound}))
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    task = run.mapped_tasks()[SCRIPT]
    runner.stack.request(
        "POST",
        f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": run.run_id,
            "task_ids": [[task["task_id"], task["map_index"]]],
            "include_downstream": True,  # the report runs again too
            "only_failed": False,
        },
    )
    assert runner.stack.wait_dag_run(DAG_ID, run.run_id, timeout=300) == "failed"
    again = run.mapped_tasks()[SCRIPT]
    assert (again["state"], again["try_number"]) == ("failed", 2)
    log = run.log(SCRIPT, try_number=2)
    assert f"{SCRIPT}: refused before any pod was started" in log
    assert "service_account=writer: this script's folder may not use it" in log
    assert "start a new run (or clear the whole run, discover included)" in log
    assert runner.pods_created(SCRIPT, since=since) == set()  # nothing launched
    row = {r["path"]: r for r in run.report()["scripts"]}[SCRIPT]
    assert row["status"] == "error", json.dumps(row)
    assert row["reason"].startswith(f"{SCRIPT}: refused before any pod was started"), json.dumps(row)
