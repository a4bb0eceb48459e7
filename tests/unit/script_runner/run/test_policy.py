from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kubernetes.client import models as k8s

from script_runner.discover.spec import ScriptSpec
from script_runner.run.policy import (
    Action,
    Outcome,
    Status,
    classify,
    decide,
    disruption_from_events,
    events_of_pod,
    retry_due,
)


def pod(
    *,
    phase: str = "Failed",
    exit_code: int | None = None,
    reason: str | None = None,
    pod_reason: str | None = None,
    waiting: str | None = None,
    unschedulable: bool = False,
) -> k8s.V1Pod:
    state = k8s.V1ContainerState()
    if exit_code is not None:
        state.terminated = k8s.V1ContainerStateTerminated(exit_code=exit_code, reason=reason)
    if waiting:
        state.waiting = k8s.V1ContainerStateWaiting(reason=waiting, message="pull failed")
    conditions = (
        [
            k8s.V1PodCondition(
                type="PodScheduled",
                status="False",
                reason="Unschedulable",
                message="0/1 nodes are available: 1 Insufficient memory.",
            )
        ]
        if unschedulable
        else []
    )
    return k8s.V1Pod(
        status=k8s.V1PodStatus(
            phase=phase,
            reason=pod_reason,
            message="node low on memory" if pod_reason else None,
            conditions=conditions,
            container_statuses=[
                k8s.V1ContainerStatus(
                    name="base", image="i", image_id="", ready=False, restart_count=0, state=state
                )
            ],
        )
    )


@pytest.mark.parametrize(
    ("remote", "status", "code", "needle"),
    [
        pytest.param(pod(phase="Succeeded", exit_code=0, reason="Completed"), Status.SUCCESS, 0, "", id="ok"),
        pytest.param(pod(exit_code=3, reason="Error"), Status.FAILED, 3, "exited with code 3", id="exit3"),
        pytest.param(pod(exit_code=137, reason="OOMKilled"), Status.OOM, 137, "OOMKilled", id="oom"),
        pytest.param(pod(exit_code=137, pod_reason="Evicted"), Status.EVICTED, 137, "Evicted", id="evicted"),
        pytest.param(pod(exit_code=99), Status.SKIPPED, 99, "done-marker", id="done-marker"),
        pytest.param(pod(exit_code=65), Status.FAILED, 65, "does not match", id="checksum"),
        pytest.param(
            pod(phase="Pending", waiting="ErrImagePull"), Status.IMAGE_PULL, None, "ErrImagePull", id="pull"
        ),
        pytest.param(
            pod(phase="Pending", unschedulable=True), Status.UNSCHEDULABLE, None, "Insufficient", id="sched"
        ),
        pytest.param(
            pod(exit_code=1, pod_reason="DeadlineExceeded"), Status.TIMEOUT, 1, "timeout", id="deadline"
        ),
    ],
)
def test_classify_reads_pod_status(remote: k8s.V1Pod, status: Status, code: int | None, needle: str) -> None:
    out = classify(remote, None)
    assert (out.status, out.exit_code) == (status, code)
    assert needle in out.reason


def test_classify_start_timeout_from_exception() -> None:
    class PodLaunchTimeoutException(Exception):
        pass

    out = classify(None, PodLaunchTimeoutException("Pod took too long to start"))
    assert out.status is Status.TIMEOUT


def _spec(**kw: object) -> ScriptSpec:
    base = dict(
        path="a.sh",
        uri="gs://b/data/a.sh",
        cpu="1",
        memory="1Gi",
        ephemeral_storage="1Gi",
        timeout=60,
        start_timeout=60,
        retries=2,
        retry_delay=1,
        image="i",
    )
    return ScriptSpec(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "spec_kw", "try_number", "evictions", "action"),
    [
        pytest.param(Outcome(Status.SUCCESS, 0), {}, 1, 0, Action.DONE, id="success"),
        pytest.param(Outcome(Status.FAILED, 3), {}, 1, 0, Action.RETRY, id="retry"),
        pytest.param(Outcome(Status.FAILED, 3), {}, 3, 0, Action.FAIL, id="own-retries-used"),
        pytest.param(Outcome(Status.FAILED, 3), {"fail_on": [3]}, 1, 0, Action.FAIL, id="fail-on"),
        pytest.param(Outcome(Status.FAILED, 3), {"retry_on": [75]}, 1, 0, Action.FAIL, id="not-retry-on"),
        pytest.param(Outcome(Status.FAILED, 75), {"retry_on": [75]}, 1, 0, Action.RETRY, id="retry-on"),
        pytest.param(Outcome(Status.FAILED, 10), {"skip_on": [10]}, 1, 0, Action.SKIP, id="skip-on"),
        pytest.param(Outcome(Status.FAILED, 77), {}, 1, 0, Action.FAIL, id="noperm-fatal"),
        pytest.param(Outcome(Status.FAILED, 65), {}, 1, 0, Action.FAIL, id="checksum-fatal"),
        pytest.param(Outcome(Status.EVICTED, 137), {}, 1, 0, Action.RESCHEDULE, id="evicted"),
        pytest.param(Outcome(Status.EVICTED, 137), {}, 1, 3, Action.RETRY, id="evicted-too-often"),
        pytest.param(Outcome(Status.OOM, 137), {"retry_on": [75]}, 1, 0, Action.RETRY, id="oom-retries"),
    ],
)
def test_decide_applies_exit_code_policy(
    outcome: Outcome, spec_kw: dict[str, object], try_number: int, evictions: int, action: Action
) -> None:
    assert (
        decide(outcome, _spec(**spec_kw), try_number=try_number, evictions=evictions, max_evictions=3)
        is action
    )


_T0 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


def _attempt(status: str, ended_secs: int) -> dict[str, object]:
    return {"status": status, "ended": (_T0 + timedelta(seconds=ended_secs)).isoformat()}


@pytest.mark.parametrize(
    ("history", "retry_delay", "now_secs", "due_secs"),
    [
        pytest.param([], 30, 0, None, id="first-attempt-starts-now"),
        pytest.param([_attempt("failed", 0)], 30, 5, 30, id="first-retry-waits-retry-delay"),
        pytest.param([_attempt("failed", 0), _attempt("failed", 40)], 30, 45, 100, id="doubles"),
        pytest.param([_attempt("failed", 0)] * 6, 30, 5, 120, id="capped-at-max"),
        pytest.param([_attempt("failed", 0)], 30, 31, None, id="airflow-already-waited-longer"),
        pytest.param([_attempt("evicted", 0)], 30, 1, None, id="evictions-do-not-count"),
        pytest.param([_attempt("oom_killed", 0)], 30, 1, 30, id="oom-counts"),
        pytest.param([_attempt("failed", 0)], 0, 0, None, id="no-delay"),
    ],
)
def test_retry_due_applies_the_scripts_own_backoff(
    history: list[dict[str, object]], retry_delay: int, now_secs: int, due_secs: int | None
) -> None:
    due = retry_due(
        history, _spec(retry_delay=retry_delay), max_delay=120, now=_T0 + timedelta(seconds=now_secs)
    )
    assert due == (None if due_secs is None else _T0 + timedelta(seconds=due_secs))


@pytest.mark.parametrize(
    ("reasons", "expected"),
    [
        pytest.param(["Scheduled", "Started", "Preempted", "Killing"], Status.EVICTED, id="preempted"),
        pytest.param(["Scheduled", "Evicted"], Status.EVICTED, id="evicted"),
        pytest.param(["Scheduled", "Started", "Killing"], None, id="plain-delete-is-not-a-disruption"),
        pytest.param([], None, id="no-events"),
    ],
)
def test_disruption_from_events_names_the_reason(reasons: list[str], expected: Status | None) -> None:
    events = [
        k8s.CoreV1Event(
            involved_object=k8s.V1ObjectReference(), metadata=k8s.V1ObjectMeta(), reason=r, message=f"m-{r}"
        )
        for r in reasons
    ]
    out = disruption_from_events(events)
    assert (out.status if out else None) == expected
    if out:
        assert "pod deleted (" in out.reason


def _disrupted(reason: str, *, pod_reason: str | None = None, message: str = "") -> k8s.V1Pod:
    remote = pod(exit_code=143, reason="Error")
    remote.status.reason = pod_reason
    remote.status.message = message or None
    remote.status.conditions = [
        k8s.V1PodCondition(type="Ready", status="False"),
        k8s.V1PodCondition(type="DisruptionTarget", status="True", reason=reason, message=message),
    ]
    return remote


@pytest.mark.parametrize(
    "reason",
    [
        "TerminationByKubelet",
        "EvictionByEvictionAPI",
        "PreemptionByScheduler",
        "DeletionByTaintManager",
        "DeletionByPodGC",
    ],
)
def test_classify_a_disruption_target_condition_is_an_eviction_not_a_failure(reason: str) -> None:
    out = classify(_disrupted(reason, message="taken away"), None)
    assert (out.status, out.exit_code) == (Status.EVICTED, 143)
    assert out.reason == f"{reason}: taken away"
    spec = _spec(retries=0)
    assert decide(out, spec, try_number=1, evictions=0, max_evictions=3) is Action.RESCHEDULE


def test_classify_a_spot_node_shutdown_is_an_eviction_with_or_without_the_condition() -> None:
    message = "Pod was terminated in response to imminent node shutdown."
    with_condition = classify(
        _disrupted("TerminationByKubelet", pod_reason="Terminated", message=message), None
    )
    assert with_condition.status is Status.EVICTED
    assert "TerminationByKubelet" in with_condition.reason
    bare = pod(exit_code=143, reason="Error", pod_reason="Terminated")
    assert (
        classify(bare, None).status is Status.EVICTED
    )  # clusters without the condition still say Terminated


def test_classify_a_false_disruption_target_is_not_a_disruption() -> None:
    remote = _disrupted("TerminationByKubelet")
    remote.status.conditions[1].status = "False"
    assert classify(remote, None).status is Status.FAILED


def _event(uid: str | None, reason: str) -> k8s.CoreV1Event:
    return k8s.CoreV1Event(
        involved_object=k8s.V1ObjectReference(name="p", uid=uid), metadata=k8s.V1ObjectMeta(), reason=reason
    )


def test_events_of_pod_keeps_only_the_events_of_this_pod_object() -> None:
    earlier, current = "uid-1", "uid-2"
    events = [_event(earlier, "Scheduled"), _event(earlier, "Preempted"), _event(current, "Scheduled")]
    assert [e.reason for e in events_of_pod(events, current)] == ["Scheduled"]
    assert disruption_from_events(events_of_pod(events, current)) is None  # not the earlier pod's preemption
    # Without a uid (deferrable path): the pod with the newest event is the current one.
    assert [e.reason for e in events_of_pod(events, None)] == ["Scheduled"]
    assert events_of_pod([_event(None, "Scheduled")], None)[0].reason == "Scheduled"
