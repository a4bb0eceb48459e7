"""Issue 11, item 8: a user clears a task that failed for good; the script runs again in that run.

The ledger's final verdict stops a try that Airflow's scheduler lost (it keeps ``max_tries``); a clear
raises ``max_tries``, so the operator takes it as a fresh start and launches a new pod.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.harness import DAG_ID

SCRIPTS = Path(__file__).parent / "scripts" / "clear"


def test_clear_a_script_failed_for_good_runs_it_again_in_the_same_run(runner: Any) -> None:
    run = runner.run_scripts(SCRIPTS, prefix="e2e-clear/", timeout=300)
    assert run.state == "failed"
    first = run.mapped_tasks()["fixed_later.sh"]
    assert first["state"] == "failed"
    assert first["try_number"] == 1  # retries=0: failed for good, no Airflow retry
    assert "E2E-CLEAR failing" in run.log("fixed_later.sh")

    runner.stack.request(
        "POST",
        f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": run.run_id,
            "task_ids": [[first["task_id"], first["map_index"]]],
            "include_downstream": True,  # the report runs again too
            "only_failed": False,
        },
    )
    state = runner.stack.wait_dag_run(DAG_ID, run.run_id, timeout=300)
    assert state == "success"
    again = run.mapped_tasks()["fixed_later.sh"]
    assert again["state"] == "success"
    assert again["try_number"] == 2
    log = run.log("fixed_later.sh", try_number=2)
    assert "E2E-CLEAR ran again after the clear" in log
    assert "already failed in this run" not in log
    row = {r["path"]: r for r in run.report()["scripts"]}["fixed_later.sh"]
    assert row["status"] == "success", json.dumps(row)
    assert row["history"] == ["failed(3)", "success(0)"]
    assert runner.pods_left() == []
