from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from kubernetes.client import models as k8s

from script_runner.config.compat import AirflowFailException, AirflowRescheduleException, AirflowTaskTimeout
from script_runner.config.settings import settings_to_wire
from script_runner.config.settings_loader import load_settings
from script_runner.run.ledger import Ledger, since_last_clear
from script_runner.run.operator import ScriptPodOperator

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


def test_operator_takes_execution_timeout_from_the_setting() -> None:
    settings = load_settings(
        environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "local", "SCRIPT_RUNNER_EXECUTION_TIMEOUT": "45s"}
    )
    op = ScriptPodOperator(
        task_id="run_scripts", script=SCRIPT, runner_settings=settings, execution_timeout=None
    )
    assert op.execution_timeout == timedelta(seconds=45)


def test_settings_refuse_an_empty_execution_timeout() -> None:
    from script_runner.config.settings import SettingsError

    with pytest.raises(SettingsError, match="execution_timeout"):
        load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_EXECUTION_TIMEOUT": "0s"})


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

    import script_runner.run.history as history_module

    slept: list[float] = []
    monkeypatch.setattr(history_module.time, "sleep", slept.append)
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


class FakeTI:
    """The few task-instance fields the operator reads (Airflow's own TI needs a DB or a supervisor)."""

    def __init__(self, *, try_number: int = 1, max_tries: int = 2) -> None:
        self.dag_id, self.try_number, self.max_tries = "gcs_script_runner", try_number, max_tries


@pytest.fixture
def ledger_op(gcs_client: Any, make_bucket: Any) -> ScriptPodOperator:
    """An operator whose attempt ledger lives in a bucket of the real GCS emulator."""
    bucket = make_bucket({})
    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS)
    op.__dict__["ledger"] = Ledger(gcs_client, bucket=bucket.name, root="script-runner")
    return op


def test_operator_turns_off_printing_the_pod_spec_with_its_env_on_failure() -> None:
    # KPO would put `remote_pod: {...}` (every env value, e.g. env=TOKEN=...) in the failure's message.
    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS)
    assert op.log_pod_spec_on_failure is False


def test_ledger_since_last_clear_drops_attempts_before_a_users_clear() -> None:
    before = [
        {"status": "failed", "action": "retry", "max_tries": 2},
        {"status": "failed", "action": "fail", "max_tries": 2},
    ]
    after = [{"status": "failed", "action": "retry", "max_tries": 5}]
    assert since_last_clear(before, 2) == before  # a lost try or a retry keeps max_tries: nothing dropped
    assert since_last_clear(before, 5) == []  # the clear raised max_tries: a fresh start
    assert since_last_clear(before + after, 5) == after
    assert since_last_clear([{"status": "failed", "action": "fail"}], 5) != []  # old records: kept
    assert since_last_clear(before, None) == before


def test_operator_runs_again_after_a_user_clears_a_task_failed_for_good(ledger_op: ScriptPodOperator) -> None:
    ledger = ledger_op.ledger
    assert ledger is not None
    for action in ("retry", "retry", "fail"):
        ledger.append(
            "r1", SCRIPT["path"], {"status": "failed", "exit_code": 3, "action": action, "max_tries": 2}
        )
    lost_try = {"run_id": "r1", "ti": FakeTI(try_number=4, max_tries=2)}
    with pytest.raises(AirflowFailException, match="already failed in this run"):
        ledger_op._refuse_after_final_verdict(ledger_op._history(lost_try))
    cleared = {"run_id": "r1", "ti": FakeTI(try_number=4, max_tries=3 + 2)}  # clear: try_number + retries
    history = ledger_op._history(cleared)
    assert history == []
    ledger_op._refuse_after_final_verdict(history)  # no verdict since the clear: the script runs
    assert ledger_op._attempt_number(4, history) == 1  # and has its retries again


def test_operator_records_an_attempt_ended_by_airflows_timeout(ledger_op: ScriptPodOperator) -> None:
    def timed_out() -> None:
        raise AirflowTaskTimeout("Timeout, PID: 1")

    ctx = {"run_id": "r1", "ti": FakeTI(try_number=1)}
    ledger_op._context = ctx
    with pytest.raises(AirflowTaskTimeout):  # retries left: Airflow retries as usual
        ledger_op._guarded(ctx, timed_out, [])
    used_up = [{"status": "failed"}, {"status": "failed"}]
    with pytest.raises(AirflowFailException, match="execution_timeout"):  # the script's retries are used up
        ledger_op._guarded({"run_id": "r1", "ti": FakeTI(try_number=3)}, timed_out, used_up)
    ledger_op.on_kill()  # Airflow calls on_kill after a timeout too: the attempt is recorded already
    records = ledger_op.ledger.read("r1", SCRIPT["path"])  # type: ignore[union-attr]
    assert [(r["status"], r["action"]) for r in records] == [("timeout", "retry"), ("timeout", "fail")]
    assert "execution_timeout" in records[0]["reason"]
    assert records[0]["max_tries"] == 2


def test_operator_records_a_timeout_hidden_behind_kpos_cleanup_failure(ledger_op: ScriptPodOperator) -> None:
    from script_runner.config.compat import AirflowException

    def timed_out_then_cleaned_up() -> None:
        try:
            raise AirflowTaskTimeout("Timeout, PID: 1")
        finally:  # what KPO's execute_sync does: delete the still running pod, raise "returned a failure"
            raise AirflowException("Pod sr-x returned a failure.")

    ctx = {"run_id": "r1", "ti": FakeTI(try_number=3)}
    ledger_op._context = ctx
    with pytest.raises(AirflowFailException, match="execution_timeout"):  # retries used up: no retry
        ledger_op._guarded(ctx, timed_out_then_cleaned_up, [{"status": "failed"}, {"status": "failed"}])
    records = ledger_op.ledger.read("r1", SCRIPT["path"])  # type: ignore[union-attr]
    assert [(r["status"], r["action"]) for r in records] == [("timeout", "fail")]
    assert "execution_timeout" in records[0]["reason"]


def test_operator_records_a_kill_from_outside_as_cancelled_not_as_the_pods_404(
    ledger_op: ScriptPodOperator,
) -> None:
    from kubernetes.client.rest import ApiException

    ctx = {"run_id": "r1", "ti": FakeTI(try_number=1)}
    ledger_op._context = ctx

    def pod_deleted_under_us() -> None:
        ledger_op.on_kill()  # what Airflow does when a user marks the running task failed
        raise ApiException(status=404, reason="Not Found")

    with pytest.raises(ApiException):
        ledger_op._guarded(ctx, pod_deleted_under_us, [])
    records = ledger_op.ledger.read("r1", SCRIPT["path"])  # type: ignore[union-attr]
    assert [(r["status"], r["action"]) for r in records] == [("cancelled", "cancel")]
    assert "NotFound" not in records[0]["reason"]
    # a cancelled attempt is not the script's failure: it spends none of its retries
    ledger_op._ledger_read = True
    assert ledger_op._attempt_number(2, records) == 1


def test_operator_never_reports_success_once_killed(ledger_op: ScriptPodOperator) -> None:
    ctx = {"run_id": "r1", "ti": FakeTI(try_number=1)}
    ledger_op._context = ctx

    def killed_then_kpo_returns() -> None:
        ledger_op.on_kill()

    with pytest.raises(AirflowFailException, match="stopped outside the task"):
        ledger_op._guarded(ctx, killed_then_kpo_returns, [])
    records = ledger_op.ledger.read("r1", SCRIPT["path"])  # type: ignore[union-attr]
    assert [r["status"] for r in records] == ["cancelled"]


class Terminated(BaseException):
    """Stands for Airflow 2's AirflowTaskTerminated (a BaseException raised after on_kill on SIGTERM)."""


def test_operator_records_an_airflow2_termination_once(ledger_op: ScriptPodOperator) -> None:
    ctx = {"run_id": "r1", "ti": FakeTI(try_number=1)}
    ledger_op._context = ctx

    def killed_then_terminated() -> None:
        ledger_op.on_kill()
        raise Terminated("Task received SIGTERM signal")

    with pytest.raises(Terminated):
        ledger_op._guarded(ctx, killed_then_terminated, [])

    def terminated_without_on_kill() -> None:
        raise Terminated("Task received SIGTERM signal")

    other = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS)
    other.__dict__["ledger"] = ledger_op.ledger
    with pytest.raises(Terminated):
        other._guarded({"run_id": "r1", "ti": FakeTI(try_number=2)}, terminated_without_on_kill, [])
    records = ledger_op.ledger.read("r1", SCRIPT["path"])  # type: ignore[union-attr]
    assert [(r["status"], r["action"], r["try_number"]) for r in records] == [
        ("cancelled", "cancel", 1),
        ("cancelled", "cancel", 2),
    ]
    assert "Terminated" in records[1]["reason"]


def test_operator_waits_for_its_dependencies_without_a_slot_then_skips_when_one_failed(
    gcs_client: Any, make_bucket: Any
) -> None:
    from datetime import UTC, datetime

    from script_runner.config.compat import AirflowSkipException

    bucket = make_bucket({})
    ledger = Ledger(gcs_client, bucket=bucket.name, root="script-runner")
    op = ScriptPodOperator(
        task_id="run_scripts",
        script={**SCRIPT, "after": ["etl/extract.sh", "etl/dims.sh"]},
        runner_settings=SETTINGS,
    )
    op.__dict__["ledger"] = ledger
    ctx = {"run_id": "r1", "ti": FakeTI(try_number=1)}
    with pytest.raises(AirflowRescheduleException) as info:  # nothing ended yet: free the slot, look again
        op._wait_for_dependencies(ctx)
    wait = (info.value.reschedule_date - datetime.now(UTC)).total_seconds()
    assert 13 < wait <= 15  # the local preset's dependency_poll
    ledger.append("r1", "etl/extract.sh", {"status": "success", "action": "done"})
    with pytest.raises(AirflowRescheduleException):  # one of two succeeded: still waiting
        op._wait_for_dependencies(ctx)
    ledger.append("r1", "etl/dims.sh", {"status": "failed", "action": "fail", "exit_code": 3})
    with pytest.raises(AirflowSkipException, match=r"skipped: dependency etl/dims\.sh failed"):
        op._wait_for_dependencies(ctx)
    (record,) = ledger.read("r1", SCRIPT["path"])
    assert (record["status"], record["action"], record["dependency"]) == ("skipped", "skip", "etl/dims.sh")
    assert record["reason"] == "dependency etl/dims.sh failed"
    assert record["exit_code"] is None  # no pod was started


def test_operator_starts_once_every_dependency_succeeded(gcs_client: Any, make_bucket: Any) -> None:
    bucket = make_bucket({})
    ledger = Ledger(gcs_client, bucket=bucket.name, root="script-runner")
    op = ScriptPodOperator(
        task_id="run_scripts", script={**SCRIPT, "after": ["etl/extract.sh"]}, runner_settings=SETTINGS
    )
    op.__dict__["ledger"] = ledger
    ledger.append("r1", "etl/extract.sh", {"status": "failed", "action": "retry"})
    ledger.append("r1", "etl/extract.sh", {"status": "success", "action": "done"})
    op._wait_for_dependencies({"run_id": "r1", "ti": FakeTI(try_number=1)})  # returns: the pod may start
    assert ledger.read("r1", SCRIPT["path"]) == []


def test_operator_records_the_attempts_usage_and_its_cpu_ask(ledger_op: ScriptPodOperator) -> None:
    ctx = {"run_id": "r1", "ti": FakeTI(try_number=1)}
    ledger_op._context = ctx
    ledger_op._usage = {"cpu_secs": 0.61, "mem_peak_bytes": 61673472, "usage": "cgroup"}  # from cleanup
    ledger_op._guarded(ctx, lambda: None, [])
    (record,) = ledger_op.ledger.read("r1", SCRIPT["path"])  # type: ignore[union-attr]
    assert record["cpu_secs"] == 0.61
    assert record["mem_peak_bytes"] == 61673472
    assert record["usage"] == "cgroup"
    assert (record["cpu"], record["memory"]) == ("250m", "256Mi")


def test_operator_records_the_pod_it_reattached_to_not_its_own_name(ledger_op: ScriptPodOperator) -> None:
    """A try after a lost worker reattaches to the earlier try's pod: the record names that pod."""
    ctx = {"run_id": "r1", "ti": FakeTI(try_number=2)}
    ledger_op._context = ctx
    ledger_op.name = "sr-job-try2-name"
    ledger_op.pod = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="sr-job-try1-pod"))
    ledger_op._guarded(ctx, lambda: None, [])
    (record,) = ledger_op.ledger.read("r1", SCRIPT["path"])  # type: ignore[union-attr]
    assert record["pod"] == "sr-job-try1-pod"


class ReadRefusingLedger:
    """A ledger whose reads fail the test: the first attempt must not read it."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, run_id: str, path: str) -> list[dict[str, Any]]:
        self.reads += 1
        return [{"status": "evicted", "action": "reschedule", "max_tries": 2}]


def test_operator_reads_no_ledger_on_a_first_try_never_rescheduled() -> None:
    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS)
    ledger = ReadRefusingLedger()
    op.__dict__["ledger"] = ledger
    first = {"run_id": "r1", "ti": FakeTI(try_number=1), "task_reschedule_count": 0}
    assert op._history(first) == []
    assert ledger.reads == 0
    assert op._ledger_read  # known empty: retries count from it, not from Airflow's try number
    # A reschedule (eviction, retry_delay wait), a later try, or Airflow 2 (no count): read it.
    for context in (
        {**first, "task_reschedule_count": 1},
        {**first, "ti": FakeTI(try_number=2)},
        {"run_id": "r1", "ti": FakeTI(try_number=1)},
    ):
        assert len(op._history(context)) == 1
    assert ledger.reads == 3


def test_operator_takes_the_settings_of_a_plan_from_an_earlier_release_without_reading_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run discovered before the items stopped carrying the settings (in flight across an upgrade)."""
    import script_runner.run.plan_check as plan_check_module

    def no_variable() -> None:
        raise AssertionError("the Variable was read")

    monkeypatch.setattr(plan_check_module, "load_settings_from_airflow", no_variable)
    op = ScriptPodOperator(task_id="run_scripts", script={**SCRIPT, "settings": settings_to_wire(SETTINGS)})
    assert op.runner_settings == SETTINGS
    assert op.script_spec.path == SCRIPT["path"]


def _finished_pod(name: str, try_number: int) -> k8s.V1Pod:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, namespace="ns", labels={"try_number": str(try_number)}),
        status=k8s.V1PodStatus(phase="Succeeded"),
    )


def _kpo_lookup(found: k8s.V1Pod, deleted: list[str]) -> Any:
    """KPO's get_or_create_pod contract for a terminated pod: delete it, or keep it if deletion is refused."""

    def lookup(self: ScriptPodOperator, pod_request_obj: k8s.V1Pod, context: Any) -> k8s.V1Pod:
        if not self.process_pod_deletion(found):
            return found
        return pod_request_obj

    def delete(self: ScriptPodOperator, pod: k8s.V1Pod, *, reraise: bool = True) -> bool:
        deleted.append(pod.metadata.name)
        return True

    return lookup, delete


@pytest.fixture
def adopting(monkeypatch: pytest.MonkeyPatch) -> tuple[ScriptPodOperator, k8s.V1Pod, list[str], list[str]]:
    """A deferrable operator at try 2 whose KPO lookup finds try 1's finished pod; what it deleted and did."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS, deferrable=True)
    found, deleted, calls = _finished_pod("sr-job-try1", 1), list[str](), list[str]()
    lookup, delete = _kpo_lookup(found, deleted)
    monkeypatch.setattr(KubernetesPodOperator, "get_or_create_pod", lookup)
    monkeypatch.setattr(KubernetesPodOperator, "process_pod_deletion", delete)
    monkeypatch.setattr(KubernetesPodOperator, "execute_async", lambda self, ctx: calls.append("defer"))
    monkeypatch.setattr(op, "build_pod_request_obj", lambda ctx: _finished_pod("sr-job-try2", 2))
    monkeypatch.setattr(op, "execute_sync", lambda ctx: calls.append("read the finished pod"))
    op._context = {"run_id": "r1", "ti": FakeTI(try_number=2)}
    return op, found, deleted, calls


def test_operator_adopts_the_finished_pod_of_a_try_airflow_lost_and_reads_it_without_deferring(
    adopting: tuple[ScriptPodOperator, k8s.V1Pod, list[str], list[str]],
) -> None:
    """The soak's failure: a lost deferred try's pod was deleted and the script started again, 6 times."""
    op, found, deleted, calls = adopting
    op._earlier = []
    op.execute_async(op._context)
    assert op.pod is found
    assert op._adopted is found
    assert deleted == []  # not deleted, not started again
    assert calls == ["read the finished pod"]  # no trigger: it would fire at once, into the same race
    assert op._pod_name() == "sr-job-try1"  # the record names it: a later try will not adopt it again


def test_operator_leaves_a_finished_pod_whose_outcome_was_recorded_to_kpo(
    adopting: tuple[ScriptPodOperator, k8s.V1Pod, list[str], list[str]],
) -> None:
    op, found, deleted, calls = adopting
    op._earlier = [{"status": "oom_killed", "action": "retry", "pod": "sr-job-try1"}]
    op.execute_async(op._context)
    assert deleted == ["sr-job-try1"]
    assert op._adopted is None
    assert op.pod.metadata.name == "sr-job-try2"  # a new pod for the retry
    assert calls == ["defer"]
    assert op.process_pod_deletion(found) is True  # outside the launch lookup: deleted as KPO does


def test_operator_ends_at_once_when_this_run_already_recorded_a_success(ledger_op: ScriptPodOperator) -> None:
    """The soak's double success: a try whose success Airflow lost is run again; no pod, no second record."""
    ctx = {"run_id": "r1", "ti": FakeTI(try_number=1)}
    ledger_op._context = ctx
    ledger_op._guarded(ctx, lambda: None, [])  # attempt 1 succeeds and is recorded
    again = {"run_id": "r1", "ti": FakeTI(try_number=2), "task_reschedule_count": 0}
    assert ledger_op._succeeded_already(ledger_op._history(again))
    cleared = {"run_id": "r1", "ti": FakeTI(try_number=2, max_tries=2 + 2)}  # a user's clear: runs again
    assert not ledger_op._succeeded_already(ledger_op._history(cleared))
    assert not ledger_op._succeeded_already([{"status": "oom_killed", "action": "retry"}])


class _StreamedManager:
    """The pod manager's end line memory (pod_logs.CatchUpPodManager.streamed_end_line)."""

    def __init__(self, line: str | None) -> None:
        self.line = line

    def streamed_end_line(self, pod: Any, container_name: str) -> str | None:
        return self.line


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "not-streamed"])
def test_cleanup_takes_the_usage_from_the_streamed_end_line_else_asks_the_api(
    monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    import script_runner.run.operator as operator_module

    asked: list[str] = []
    monkeypatch.setattr(KubernetesPodOperator, "cleanup", lambda self, *a, **k: None)
    monkeypatch.setattr(
        operator_module, "read_pod_usage", lambda *a, **k: asked.append("api") or {"cpu_secs": 9.0}
    )
    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS)
    line = (
        "2026-12-05T16:00:00Z [runner] ts=x level=info event=end script=etl/load.sh exit=0 secs=1 reason=ok"
    )
    op.__dict__["pod_manager"] = _StreamedManager(f"{line} cpu_secs=0.077 usage=rusage" if streamed else None)
    op.__dict__["client"] = object()  # the Kubernetes client read_pod_usage would be handed
    meta = k8s.V1ObjectMeta(name="p", namespace="ns")
    remote = k8s.V1Pod(metadata=meta, status=k8s.V1PodStatus(phase="Succeeded"))
    op.cleanup(k8s.V1Pod(metadata=meta), remote)
    if streamed:  # one API call a task fewer
        assert asked == []
        assert op._usage == {"cpu_secs": 0.077, "usage": "rusage", "end_reason": "ok", "entry_secs": 1}
    else:
        assert asked == ["api"]
        assert op._usage == {"cpu_secs": 9.0}
