from __future__ import annotations

from datetime import timedelta

import pytest

from script_runner.compat import AirflowRescheduleException
from script_runner.operator import ScriptPodOperator
from script_runner.settings import load_settings

SETTINGS = load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "local"})
SCRIPT = {
    "path": "etl/load.sh",
    "uri": "gs://b/data/etl/load.sh",
    "generation": "5",
    "md5": "m",
    "cpu": "250m",
    "memory": "256Mi",
    "ephemeral_storage": "1Gi",
    "timeout": 600,
    "start_timeout": 120,
    "retries": 2,
    "retry_delay": 30,
    "image": "localhost/script-runner:local",
}


def test_operator_sets_a_deadline_when_mapped_with_execution_timeout_none() -> None:
    # partial() hands execution_timeout=None to every mapped instance: the script's own bound must win.
    op = ScriptPodOperator(
        task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS, execution_timeout=None
    )
    assert op.execution_timeout == timedelta(seconds=600 + 120 + 300)
    assert op.startup_check_interval_seconds == 1


def test_operator_keeps_an_explicit_execution_timeout() -> None:
    op = ScriptPodOperator(
        task_id="run_scripts",
        script=SCRIPT,
        runner_settings=SETTINGS,
        execution_timeout=timedelta(minutes=7),
    )
    assert op.execution_timeout == timedelta(minutes=7)


def test_operator_reschedules_a_retry_until_the_scripts_own_delay_passed() -> None:
    from datetime import UTC, datetime

    settings = load_settings(
        environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "local", "SCRIPT_RUNNER_MAX_RETRY_DELAY": "5m"}
    )
    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=settings)
    just_failed = [{"status": "failed", "ended": datetime.now(UTC).isoformat()}]
    with pytest.raises(AirflowRescheduleException) as info:
        op._wait_for_own_retry_delay(just_failed)
    wait = (info.value.reschedule_date - datetime.now(UTC)).total_seconds()
    assert 28 < wait <= 30  # the script's retry_delay=30
    op._wait_for_own_retry_delay([])  # a first attempt never waits


def test_operator_sleeps_a_short_wait_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    # A short reschedule would race Airflow's scheduler (apache/airflow#71172): wait in the slot instead.
    from datetime import UTC, datetime

    import script_runner.operator as operator_module

    slept: list[float] = []
    monkeypatch.setattr(operator_module.time, "sleep", slept.append)
    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS)
    just_failed = [{"status": "failed", "ended": datetime.now(UTC).isoformat()}]
    op._wait_for_own_retry_delay(just_failed)  # local preset caps max_retry_delay at 10 s: no reschedule
    assert len(slept) == 1
    assert 8 < slept[0] <= 10


def test_operator_counts_attempts_from_the_ledger_not_airflow_tries() -> None:
    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS)
    one_failure = [{"status": "failed"}, {"status": "evicted"}]
    op._ledger_read = True
    # try 4, but only one real failure so far (a lost try and an eviction do not count): attempt 2
    assert op._attempt_number(4, one_failure) == 2
    assert op._attempt_number(1, []) == 1
    op._ledger_read = False  # ledger unreadable: fall back to Airflow's try number
    assert op._attempt_number(4, one_failure) == 4


def test_operator_never_reruns_a_script_failed_for_good_in_this_run() -> None:
    # Airflow may retry an instance after our final failure (its scheduler lost that try's state): the
    # ledger's verdict stops a new pod, so retries=1 never means three runs of the script.
    from script_runner.compat import AirflowFailException

    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS)
    failed_twice = [
        {"status": "failed", "exit_code": 3, "action": "retry"},
        {"status": "failed", "exit_code": 3, "action": "fail"},
    ]
    with pytest.raises(AirflowFailException, match="already failed in this run"):
        op._refuse_after_final_verdict(failed_twice)
    op._refuse_after_final_verdict(failed_twice[:1])  # a retry verdict lets the next attempt run
    op._refuse_after_final_verdict([{"status": "evicted", "action": "reschedule"}])
    op._refuse_after_final_verdict([])
