"""Runner-side policies: what a finished (or never started) pod means, and what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from script_runner.config import constants as c

if TYPE_CHECKING:
    from kubernetes.client import models as k8s

    from script_runner.discover.spec import ScriptSpec


class Status(StrEnum):
    """How one attempt ended, as the report shows it."""

    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    OOM = "oom_killed"
    EVICTED = "evicted"
    TIMEOUT = "timeout"
    UNSCHEDULABLE = "unschedulable"
    IMAGE_PULL = "image_pull_error"
    ERROR = "error"
    CANCELLED = "cancelled"  # stopped from outside the task (marked failed/success, worker shut down)


class Action(StrEnum):
    """What the operator does next."""

    DONE = "done"
    SKIP = "skip"
    RETRY = "retry"
    FAIL = "fail"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"  # stopped from outside: Airflow, not the script's policy, decides what follows


@dataclass
class Outcome:
    """One attempt's result, derived from the pod and the exception KPO raised."""

    status: Status
    exit_code: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the ledger."""
        data = asdict(self)
        data["status"] = self.status.value
        return data


# Entrypoint codes that no retry can fix: configuration, checksum, permission.
FATAL_CODES = frozenset({c.EXIT_CONFIG, c.EXIT_CHECKSUM, c.EXIT_NOPERM})
_IMAGE_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
# Pod-level reasons for a pod taken away from a healthy script: eviction, preemption, graceful node shutdown
# (spot/preemptible VMs: "Terminated"; "Shutdown" when admitted while the node shuts down), lost node.
_DISRUPTED_POD_REASONS = frozenset({"Evicted", "Preempted", "Terminated", "Shutdown", "NodeLost"})


def classify(remote_pod: k8s.V1Pod | None, error: BaseException | None) -> Outcome:
    """Read the pod's last known status (and the error, if any) into an :class:`Outcome`."""
    status = getattr(remote_pod, "status", None)
    pod_reason = getattr(status, "reason", None) or ""
    message = getattr(status, "message", None) or ""
    if pod_reason == "DeadlineExceeded":
        return Outcome(Status.TIMEOUT, _exit_code(remote_pod), f"run timeout reached: {message}".strip(": "))
    disruption = _disruption(remote_pod)
    if disruption is not None:
        return Outcome(Status.EVICTED, _exit_code(remote_pod), disruption)
    terminated = _terminated(remote_pod)
    if terminated is not None:
        code = terminated.exit_code
        reason = terminated.reason or ""
        if reason == "OOMKilled":
            return Outcome(Status.OOM, code, "OOMKilled: the script used more than its memory limit")
        if reason == "Evicted":
            return Outcome(Status.EVICTED, code, f"Evicted: {terminated.message or message}".strip(": "))
        if code == 0:
            return Outcome(Status.SUCCESS, 0, "")
        if code == c.EXIT_SKIPPED:
            # The entrypoint no longer exits 99 (done-markers are the task's); a runner image before
            # intervals still does, and a script may: a skip either way.
            return Outcome(Status.SKIPPED, code, "skipped: exit 99 (a done-marker in an older runner image)")
        return Outcome(Status.FAILED, code, _code_reason(code, reason, terminated.message))
    waiting = _waiting(remote_pod)
    if waiting is not None and waiting.reason in _IMAGE_WAITING:
        return Outcome(Status.IMAGE_PULL, None, f"{waiting.reason}: {waiting.message or ''}".strip(": "))
    if _unschedulable(remote_pod):
        return Outcome(
            Status.UNSCHEDULABLE, None, "pod could not be scheduled: " + _scheduling_message(remote_pod)
        )
    if error is not None:
        name = type(error).__name__
        if "Timeout" in name or "timed out" in str(error).lower():
            return Outcome(Status.TIMEOUT, None, f"pod did not start in time: {str(error).splitlines()[0]}")
        return Outcome(Status.ERROR, None, f"{name}: {str(error).splitlines()[0] if str(error) else ''}")
    return Outcome(Status.ERROR, None, f"pod ended in phase {getattr(status, 'phase', None)}")


# Event reasons that mean the pod was taken away (preempted, drained, node lost), not that the script failed.
DISRUPTION_REASONS = frozenset({"Preempted", "Preempting", "Evicted", "TaintManagerEviction", "NodeShutdown"})


def disruption_from_events(events: list[Any]) -> Outcome | None:
    """An eviction outcome when a vanished pod's events say it was preempted or evicted (None otherwise).

    A pod deleted by the Eviction API, by preemption or by a node drain is gone when the operator looks;
    its Events (kept by the API server for about an hour) still say why.
    """
    for event in reversed(events):
        reason = getattr(event, "reason", None) or ""
        if reason in DISRUPTION_REASONS:
            message = getattr(event, "message", None) or ""
            return Outcome(Status.EVICTED, None, f"pod deleted ({reason}): {message}".strip(": "))
    return None


def events_of_pod(events: list[Any], uid: str | None) -> list[Any]:
    """The events about one pod object among the events listed by its name.

    A re-run that reuses the pod name would otherwise inherit the events of the earlier pod. Without a
    uid (the deferrable path knows only the name), the pod with the newest event is taken to be ours.

    :param events: core/v1 Events whose involvedObject has this pod's name, oldest first.
    :param uid: the pod's metadata.uid, if known.
    """
    if not uid:
        uids = [getattr(getattr(e, "involved_object", None), "uid", None) for e in events]
        uid = next((u for u in reversed(uids) if u), None)
        if uid is None:
            return list(events)
    return [e for e in events if getattr(getattr(e, "involved_object", None), "uid", None) == uid]


def decide(
    outcome: Outcome, spec: ScriptSpec, *, try_number: int, evictions: int, max_evictions: int
) -> Action:
    """The next step for an attempt's outcome.

    :param try_number: this attempt's Airflow try number (1-based).
    :param evictions: how many earlier attempts of this run were evicted.
    """
    if outcome.status is Status.SUCCESS:
        return Action.DONE
    if outcome.status is Status.SKIPPED or (
        outcome.exit_code is not None and outcome.exit_code in spec.skip_on
    ):
        return Action.SKIP
    if outcome.status is Status.EVICTED:
        return Action.RESCHEDULE if evictions < max_evictions else _retry_or_fail(spec, try_number)
    code = outcome.exit_code
    if code is not None and (code in FATAL_CODES or code in spec.fail_on):
        return Action.FAIL
    if (
        code is not None
        and spec.retry_on is not None
        and code not in spec.retry_on
        and outcome.status is not Status.OOM
    ):
        return Action.FAIL
    return _retry_or_fail(spec, try_number)


def _retry_or_fail(spec: ScriptSpec, try_number: int) -> Action:
    # The Airflow ceiling (max_tries) may be higher than this script's retries: enforce the script's own.
    return Action.RETRY if try_number <= spec.retries else Action.FAIL


def _container_status(pod: k8s.V1Pod | None) -> Any:
    statuses = getattr(getattr(pod, "status", None), "container_statuses", None) or []
    for status in statuses:
        if status.name == c.CONTAINER_NAME:
            return status
    return statuses[0] if statuses else None


def _terminated(pod: k8s.V1Pod | None) -> Any:
    status = _container_status(pod)
    state = getattr(status, "state", None)
    return getattr(state, "terminated", None) or getattr(
        getattr(status, "last_state", None), "terminated", None
    )


def _waiting(pod: k8s.V1Pod | None) -> Any:
    return getattr(getattr(_container_status(pod), "state", None), "waiting", None)


def _exit_code(pod: k8s.V1Pod | None) -> int | None:
    terminated = _terminated(pod)
    return terminated.exit_code if terminated is not None else None


def _disruption(pod: k8s.V1Pod | None) -> str | None:
    """Why the cluster took the pod away (DisruptionTarget condition, else the status reason), or None.

    Kubernetes sets it (status True) for every disruption it causes: EvictionByEvictionAPI (drain,
    eviction), PreemptionByScheduler, DeletionByTaintManager (node not ready/unreachable),
    TerminationByKubelet (node pressure, graceful node shutdown), DeletionByPodGC (node gone).
    """
    for cond in getattr(getattr(pod, "status", None), "conditions", None) or []:
        if cond.type == "DisruptionTarget" and cond.status == "True":
            return f"{cond.reason or 'DisruptionTarget'}: {cond.message or ''}".strip(": ")
    status = getattr(pod, "status", None)
    reason = getattr(status, "reason", None) or ""
    if reason in _DISRUPTED_POD_REASONS:
        return f"{reason}: {getattr(status, 'message', None) or ''}".strip(": ")
    return None


def _unschedulable(pod: k8s.V1Pod | None) -> bool:
    for cond in getattr(getattr(pod, "status", None), "conditions", None) or []:
        if cond.type == "PodScheduled" and cond.status == "False":
            return True
    return False


def _scheduling_message(pod: k8s.V1Pod | None) -> str:
    for cond in getattr(getattr(pod, "status", None), "conditions", None) or []:
        if cond.type == "PodScheduled":
            return cond.message or cond.reason or "unschedulable"
    return "unschedulable"


def _code_reason(code: int, reason: str, message: str | None) -> str:
    known = {
        c.EXIT_CONFIG: "runner configuration error",
        c.EXIT_CHECKSUM: "script content does not match the discovered generation/md5",
        c.EXIT_TEMPFAIL: "temporary failure (fetching the script, or a GCS call of the runner library)",
        c.EXIT_NOPERM: "missing permission (IAM preflight)",
        c.EXIT_OOM: "killed (SIGKILL, often out of memory)",
        143: "terminated (SIGTERM)",
    }
    text = known.get(code, f"script exited with code {code}")
    if message:
        text += f": {message.strip()[:300]}"
    return text


def retry_due(
    history: list[dict[str, Any]], spec: ScriptSpec, *, max_delay: int, now: datetime
) -> datetime | None:
    """When this script's next attempt may start under its own ``retry_delay`` (None: it may start now).

    Airflow's retry delay is one value for the whole mapped task (the DAG-level floor); each script's
    ``retry_delay`` directive is applied on top: after the n-th counted failure the next attempt waits
    ``retry_delay * 2**(n-1)`` (capped at ``max_delay``) from the end of that failure. Evictions do not
    count (they are rescheduled on their own).

    :param history: this run's earlier attempts from the ledger, oldest first.
    :param max_delay: the cap in seconds (settings ``max_retry_delay``).
    """
    failures = _failures(history)
    if not failures or spec.retry_delay <= 0:
        return None
    try:
        ended = datetime.fromisoformat(str(failures[-1].get("ended")))
    except ValueError:
        return None
    if ended.tzinfo is None:
        ended = ended.replace(tzinfo=UTC)
    delay = min(max_delay, spec.retry_delay * 2 ** (len(failures) - 1))
    due = ended + timedelta(seconds=delay)
    return due if due > now + timedelta(seconds=1) else None


def counted_failures(history: list[dict[str, Any]]) -> int:
    """Earlier attempts of this run that count against the script's retries (evictions do not)."""
    return len(_failures(history))


def _failures(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [h for h in history if h.get("status") not in _NOT_FAILURES]


_NOT_FAILURES = {Status.SUCCESS.value, Status.SKIPPED.value, Status.EVICTED.value, Status.CANCELLED.value}
