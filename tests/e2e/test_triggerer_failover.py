"""Issue 25: a deferred script survives its triggerer stalling and dying (Airflow 3.3's trigger moves).

Airflow 3.3's triggerer calls a trigger's ``on_kill`` for every trigger it no longer holds, also when the
trigger moved to another triggerer after missed heartbeats (apache/airflow#73454), and KPO's ``on_kill``
deletes the pod. Two triggerers here: the stack's holds the trigger and stalls (SIGSTOP) past the other's
health threshold, the other takes the trigger over, the stalled one resumes (and drops its copy: the kill
path), then is killed (SIGKILL). The script must run to its end in its first pod and the task succeed.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.airflow_env import airflow_major
from local.airflow_processes import SECOND_TRIGGERER, restore_triggerers, start_second_triggerer
from local.processes import alive, log_tail
from tests.e2e.harness import wait_until

SCRIPTS = Path(__file__).parent / "scripts" / "failover"


def _triggerer_job(run: Any) -> Any:
    """The id of the triggerer job that holds steady.sh's trigger (None: none yet)."""
    job = (run.mapped_tasks().get("steady.sh") or {}).get("triggerer_job") or {}
    return job.get("id")


@pytest.fixture
def two_triggerers() -> Iterator[None]:
    """The stack as the other tests expect it afterwards: its own triggerer back, the second one gone."""
    yield
    restore_triggerers()


@pytest.mark.usefixtures("two_triggerers")
@pytest.mark.skipif(airflow_major() < 3, reason="Airflow 3.3's triggerer (on_kill on a moved trigger)")
def test_failover_a_deferred_script_runs_to_its_end_when_its_triggerer_stalls_then_dies(runner: Any) -> None:
    run = runner.launch(SCRIPTS, prefix="e2e-failover/", settings={"deferrable": True})

    def deferred_and_running() -> bool:
        ti = run.mapped_tasks().get("steady.sh") or {}
        return ti.get("state") == "deferred" and runner.running_pod("steady.sh") is not None

    wait_until("the task deferred while its pod runs", deferred_and_running, 180)
    pod = runner.running_pod("steady.sh")["name"]
    first = alive("triggerer")
    assert first is not None
    held_by = wait_until("the stack's triggerer to hold the trigger", lambda: _triggerer_job(run), 60)
    start_second_triggerer(health_check_threshold=8)
    wait_until(
        "the second triggerer to start", lambda: "Starting the triggerer" in log_tail(SECOND_TRIGGERER), 90
    )

    os.killpg(first, signal.SIGSTOP)  # missed heartbeats: the other triggerer takes the trigger over
    try:
        wait_until("the trigger to move", lambda: _triggerer_job(run) not in (None, held_by), 90)
    finally:
        os.killpg(first, signal.SIGCONT)  # back: it drops its copy of the moved trigger (its on_kill)
    time.sleep(5)
    os.killpg(first, signal.SIGKILL)  # and dies

    state = runner.stack.wait_dag_run(run.dag_id, run.run_id, timeout=240)
    assert state == "success"
    ti = run.mapped_tasks()["steady.sh"]
    assert ti["state"] == "success"
    assert ti["try_number"] == 1  # one try, no retry after a deleted pod
    log = run.log("steady.sh")
    assert "E2E-FAILOVER started" in log
    assert "E2E-FAILOVER finished" in log
    row = {r["path"]: r for r in run.report()["scripts"]}["steady.sh"]
    assert row["status"] == "success", row
    assert row["history"] == ["success(0)"], row  # its first pod ran it to the end
    assert pod in log or pod in str(row)
