"""A deferred script's execution_timeout fires once, on every supported provider, and reads as Airflow's.

cncf-kubernetes 10.18+ enforces ``execution_timeout`` in its trigger (a ``timeout`` event at the try's start
plus the timeout) and pads the deferral's own timeout past it; older providers (Composer's 10.11, 10.14)
leave it to Airflow, which bounds the deferral by ``execution_timeout``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client import models as k8s

from script_runner.config.compat import AirflowTaskTimeout, TaskDeferred
from script_runner.run.operator import ScriptPodOperator
from tests.unit.script_runner.run.test_operator import SCRIPT, SETTINGS, FakeTI, ledger_op  # noqa: F401
from tests.unit.script_runner.run.test_trigger import ArmedTrigger, _task_in_state, armed_trigger  # noqa: F401

TIMEOUT = timedelta(seconds=600 + 120 + 300)  # the script's timeout + start_timeout + 5 minutes


def _running_pod() -> k8s.V1Pod:
    meta = k8s.V1ObjectMeta(name="sr-etl-load-abc-123", namespace="ns", labels={"try_number": "1"})
    running = k8s.V1ContainerStatus(
        name="base",
        image="i",
        image_id="",
        ready=True,
        restart_count=0,
        state=k8s.V1ContainerState(running=k8s.V1ContainerStateRunning()),
    )
    spec = k8s.V1PodSpec(containers=[k8s.V1Container(name="base")])
    status = k8s.V1PodStatus(phase="Running", container_statuses=[running])
    return k8s.V1Pod(metadata=meta, spec=spec, status=status)


def _deferrable(**kwargs: Any) -> ScriptPodOperator:
    op = ScriptPodOperator(
        task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS, deferrable=True, **kwargs
    )
    op.pod = _running_pod()
    return op


def test_operator_defers_with_a_single_execution_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """One deadline: the trigger's at start + execution_timeout (10.18+), Airflow's backstop a minute or
    more after it; or (older providers) none in the trigger, and Airflow bounds the deferral by it."""
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", '{"conn_type": "kubernetes"}')
    op = _deferrable()
    assert op.execution_timeout == TIMEOUT
    started = datetime.now(UTC) - timedelta(seconds=100)
    ti = FakeTI(try_number=1)
    ti.start_date = started  # type: ignore[attr-defined]
    context = {"run_id": "r1", "ti": ti}
    op._context = context
    # cncf-kubernetes before 10.11 (Airflow 2.10.5's) reads the context from the operator, not an argument
    takes_context = "context" in inspect.signature(op.invoke_defer_method).parameters
    with pytest.raises(TaskDeferred) as deferred:
        op.invoke_defer_method(**({"context": context} if takes_context else {}))
    _, kwargs = deferred.value.trigger.serialize()
    deadline = (kwargs.get("trigger_kwargs") or {}).get("_execution_deadline")
    if deadline is None:  # the provider leaves it to Airflow: the deferral has no timeout of its own
        assert deferred.value.timeout is None
        return
    assert deadline == int(started.timestamp() + TIMEOUT.total_seconds())
    backstop = deferred.value.timeout.total_seconds()
    remaining = TIMEOUT.total_seconds() - 100
    assert remaining + 58 <= backstop <= remaining + 120  # after the trigger's deadline, not before


class FakeKube:
    """What KPO's reentry and cleanup call: the pod (still running at the deadline), deletes, events."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def get_pod(self, name: str, namespace: str) -> k8s.V1Pod:
        return _running_pod()

    def read_pod(self, pod: k8s.V1Pod) -> k8s.V1Pod:
        return _running_pod()

    def delete_pod(self, pod: k8s.V1Pod) -> None:
        self.deleted.append(pod.metadata.name)

    def read_pod_events(self, pod: k8s.V1Pod) -> Any:
        return SimpleNamespace(items=[])

    def await_pod_completion(self, pod: k8s.V1Pod, *args: Any, **kwargs: Any) -> k8s.V1Pod:
        return _running_pod()

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def test_operator_records_the_triggers_execution_timeout_as_airflows_once(
    ledger_op: ScriptPodOperator,  # noqa: F811 (the fixture of test_operator)
) -> None:
    """cncf-kubernetes 10.18+: the trigger's ``timeout`` event at the deadline is the task's timeout:
    one ``timeout`` record worded as in a synchronous run, the pod deleted, Airflow's retry as usual."""
    op = ledger_op
    op.deferrable, op.get_logs = True, False
    kube = FakeKube()
    op.__dict__.update(hook=kube, client=kube, pod_manager=kube)
    context = {"run_id": "r1", "ti": FakeTI(try_number=1)}
    event = {
        "status": "timeout",
        "namespace": "ns",
        "name": "sr-etl-load-abc-123",
        "message": "Pod ns/sr-etl-load-abc-123 reached the task's execution_timeout deadline.",
    }
    with pytest.raises(AirflowTaskTimeout):  # retries left: Airflow retries as usual
        op.trigger_reentry(context, event)
    records = op.ledger.read("r1", SCRIPT["path"])  # type: ignore[union-attr]
    assert [(r["status"], r["action"]) for r in records] == [("timeout", "retry")]
    assert records[0]["reason"] == f"Airflow's execution_timeout ({TIMEOUT}) reached; pod deleted"
    assert kube.deleted == ["sr-etl-load-abc-123"]


@pytest.mark.parametrize(
    ("past_deadline", "expected"),
    [
        pytest.param(True, ("timeout", "retry"), id="airflows-deferral-timeout"),
        pytest.param(False, ("cancelled", "cancel"), id="a-users-kill"),
    ],
)
def test_trigger_records_airflows_deferral_timeout_as_the_timeout_not_a_kill(
    armed_trigger: Callable[..., ArmedTrigger],  # noqa: F811 (the fixture of test_trigger)
    monkeypatch: pytest.MonkeyPatch,
    past_deadline: bool,
    expected: tuple[str, str],
) -> None:
    """Airflow 2 (and providers before 10.18) bound the deferral by execution_timeout and then cancel the
    trigger, which reads as a kill (the task left ``deferred``): past the deadline it is the timeout."""
    armed = armed_trigger()
    offset = -1 if past_deadline else 3600
    deadline = datetime.now(UTC).timestamp() + offset
    armed.trigger.cancel_record["timeout"] = {"deadline": deadline, "limit": str(TIMEOUT)}
    _task_in_state(monkeypatch, armed.trigger, "scheduled")  # the scheduler's __fail__ after the timeout
    asyncio.run(armed.trigger.record_cancel())
    records = armed.ledger.read("r1", "a.sh")
    assert [(r["status"], r["action"]) for r in records] == [expected]
    if past_deadline:
        assert records[0]["reason"] == f"Airflow's execution_timeout ({TIMEOUT}) reached; pod deleted"


def test_operator_hands_the_trigger_its_execution_timeout_deadline(
    ledger_op: ScriptPodOperator,  # noqa: F811 (the fixture of test_operator)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger

    started = datetime.now(UTC)
    ti = FakeTI(try_number=1)
    ti.start_date = started  # type: ignore[attr-defined]
    ledger_op._context = {"run_id": "r1", "ti": ti}
    kpo = KubernetesPodTrigger(
        pod_name="p", pod_namespace="ns", trigger_start_time=started, base_container_name="base"
    )
    with pytest.raises(TaskDeferred) as deferred:
        ledger_op.defer(trigger=kpo, method_name="trigger_reentry")
    timeout = deferred.value.trigger.cancel_record["timeout"]
    assert timeout == {"deadline": started.timestamp() + TIMEOUT.total_seconds(), "limit": str(TIMEOUT)}
