"""The wait for ``after=`` dependencies follows the dependency's current try and Airflow's final state."""

from __future__ import annotations

from typing import Any

import pytest

import script_runner.run.waiting as waiting_module
from script_runner.config.compat import AirflowRescheduleException, AirflowSkipException
from script_runner.run.ledger import Ledger
from script_runner.run.operator import ScriptPodOperator
from tests.unit.script_runner.run.test_operator import SCRIPT, SETTINGS, FakeTI

DEP = "etl/extract.sh"
CTX = {"run_id": "r1", "ti": FakeTI(try_number=1)}


@pytest.fixture
def airflow_states(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What Airflow answers for each task instance (``"<task>_<index>"``); a missing key raises, as 3.0."""
    states: dict[str, Any] = {}

    def task_instance_state(*, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
        key = f"{task_id}_{map_index}"
        if key not in states:
            raise AttributeError("get_task_states")  # Airflow 3.0 has no such call
        return states[key]

    monkeypatch.setattr(waiting_module, "task_instance_state", task_instance_state, raising=False)
    return states


@pytest.fixture
def waiter(gcs_client: Any, make_bucket: Any) -> ScriptPodOperator:
    """A script waiting for etl/extract.sh (map index 0 of run_scripts), its ledger in the GCS emulator."""
    bucket = make_bucket({})
    op = ScriptPodOperator(
        task_id="run_scripts",
        script={**SCRIPT, "after": [DEP], "after_tasks": {DEP: ["run_scripts", 0]}},
        runner_settings=SETTINGS,
    )
    op.__dict__["ledger"] = Ledger(gcs_client, bucket=bucket.name, root="script-runner")
    return op


def _failed_for_good(ledger: Ledger) -> None:
    ledger.append("r1", DEP, {"status": "failed", "exit_code": 3, "action": "fail", "max_tries": 2})


def test_waiting_a_cleared_failed_dependency_is_waited_for_not_skipped(
    waiter: ScriptPodOperator, airflow_states: dict[str, Any]
) -> None:
    assert waiter.ledger is not None
    _failed_for_good(waiter.ledger)
    airflow_states["run_scripts_0"] = (
        "queued"  # a user cleared it: it runs again, its last record still says fail
    )
    with pytest.raises(AirflowRescheduleException):
        waiter._wait_for_dependencies(CTX)
    assert waiter.ledger.read("r1", SCRIPT["path"]) == []  # no skip recorded
    waiter.ledger.append("r1", DEP, {"status": "success", "exit_code": 0, "action": "done", "max_tries": 5})
    airflow_states["run_scripts_0"] = "success"
    waiter._wait_for_dependencies(CTX)  # its new try succeeded: the pod may start


def test_waiting_a_running_dependency_marked_success_lets_its_dependents_start(
    waiter: ScriptPodOperator, airflow_states: dict[str, Any]
) -> None:
    assert waiter.ledger is not None
    # marked success while its pod ran: the pod was deleted and the attempt recorded cancelled
    waiter.ledger.append("r1", DEP, {"status": "cancelled", "action": "cancel", "max_tries": 2})
    airflow_states["run_scripts_0"] = "success"
    waiter._wait_for_dependencies(CTX)  # returns: a user's "success" counts
    assert waiter.ledger.read("r1", SCRIPT["path"]) == []


def test_waiting_a_dependency_marked_failed_skips_and_one_still_queued_waits(
    waiter: ScriptPodOperator, airflow_states: dict[str, Any]
) -> None:
    airflow_states["run_scripts_0"] = "up_for_reschedule"
    with pytest.raises(AirflowRescheduleException):
        waiter._wait_for_dependencies(CTX)
    airflow_states["run_scripts_0"] = "failed"  # marked failed while it waited: no attempt recorded
    with pytest.raises(AirflowSkipException, match="ended failed in Airflow without a recorded attempt"):
        waiter._wait_for_dependencies(CTX)


def test_waiting_falls_back_to_the_ledger_where_airflow_cannot_say(
    waiter: ScriptPodOperator, airflow_states: dict[str, Any]
) -> None:
    assert waiter.ledger is not None
    _failed_for_good(waiter.ledger)  # no Airflow state (3.0): the ledger's last record decides, as before
    with pytest.raises(AirflowSkipException, match=r"dependency etl/extract\.sh failed"):
        waiter._wait_for_dependencies(CTX)
