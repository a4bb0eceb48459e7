"""One attempt of a script's task: its number, its ledger record, and its time limits.

What :class:`~script_runner.run.operator.ScriptPodOperator` needs to know about an attempt that is not the
operator's own lifecycle: whether an earlier attempt of the run can exist, which attempt this is as the
script's retries count it, the record it leaves in the ledger (and the one the trigger writes when a user
stops it while deferred), and Airflow's execution timeout of the task.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from script_runner.config.compat import AirflowTaskTimeout
from script_runner.config.units import parse_duration
from script_runner.run.policy import Action, Outcome, Status, counted_failures

if TYPE_CHECKING:
    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.spec import ScriptSpec

# What on_kill records, and what the trigger records for a kill while deferred; the report says more when
# it knows the task's final state (report.py).
CANCEL_REASON = "stopped outside the task (marked failed or success, or its worker shut down); pod deleted"
DEFERRED_CANCEL_REASON = "stopped outside the task while deferred (marked failed or success); pod deleted"


def first_attempt(context: Any) -> bool:
    """Whether this is a script's first attempt in its run, so the ledger can hold nothing for it yet.

    True only for try 1 never rescheduled (Airflow 3 puts ``task_reschedule_count`` in the context). Every
    way an earlier attempt of the same run can exist moves one of them: a retry, a user's clear and a try
    the scheduler lost raise the try number; an eviction or a ``retry_delay`` wait reschedules. A deferred
    try that resumes is the same attempt (its only possible record, a cancel, ends it). Unknown (Airflow
    2): False, and the ledger is read.

    :param context: the task's context.
    """
    ti = context.get("ti")
    reschedules = context.get("task_reschedule_count")
    return getattr(ti, "try_number", None) == 1 and isinstance(reschedules, int) and reschedules == 0


def max_tries(context: Any) -> int | None:
    """The task instance's ``max_tries`` (Airflow raises it when a user clears the task).

    :param context: the task's context.
    """
    value = getattr(context.get("ti"), "max_tries", None)
    return value if isinstance(value, int) else None


def attempt_number(try_number: int, history: list[dict[str, Any]], *, ledger_read: bool) -> int:
    """An attempt's number as the script's retries count it: from the ledger when it was read.

    Real failed attempts, not Airflow's try number: a try lost to the scheduler (e.g. its deferral race,
    apache/airflow#67287) must not use up the script's retries.

    :param try_number: Airflow's try number.
    :param history: the run's earlier attempts (since the last clear).
    :param ledger_read: whether ``history`` came from the ledger (else the try number is all there is).
    """
    if not ledger_read:
        return int(try_number)
    return min(int(try_number), 1 + counted_failures(history))


def count_status(history: list[dict[str, Any]], status: Status) -> int:
    """Earlier attempts of this run that ended with ``status``.

    :param history: the run's earlier attempts.
    :param status: the status to count.
    """
    return sum(1 for h in history if h.get("status") == status.value)


def base_record(
    context: Any, *, pod: str | None, memory: str, cpu: str, started_at: datetime
) -> dict[str, Any]:
    """An attempt's fields known at its start (the ledger record adds how it ended).

    :param context: the task's context.
    :param pod: the attempt's pod name.
    :param memory: the memory the pod asks for (raised after OOM kills).
    :param cpu: the cpu the pod asks for.
    :param started_at: when the attempt started.
    """
    return {
        "try_number": context["ti"].try_number,
        "max_tries": max_tries(context),
        "pod": pod,
        "memory": memory,
        "cpu": cpu,
        "started": started_at.isoformat(timespec="seconds"),
    }


def attempt_record(
    outcome: Outcome,
    action: Action,
    *,
    base: dict[str, Any],
    started: float,
    usage: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ledger record of an ended attempt: how it ended, what was done about it, and its fields.

    :param outcome: how the attempt ended.
    :param action: what the policy decided.
    :param base: the attempt's fields from :func:`base_record`.
    :param started: the attempt's start on ``time.monotonic``'s clock (for ``secs``).
    :param usage: the attempt's CPU time and peak memory (empty when unknown).
    :param extra: more fields (e.g. the dependency a skip waited for).
    """
    return {
        **outcome.as_dict(),
        "action": action.value,
        **(extra or {}),
        **base,
        "ended": datetime.now(UTC).isoformat(timespec="seconds"),
        "secs": round(time.monotonic() - started, 2),
        **usage,
    }


def deferred_cancel_record(
    base: dict[str, Any], *, now: datetime | None = None, timeout: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ledger record the trigger writes for an attempt stopped while it was deferred.

    The same fields as :func:`attempt_record`'s, timed from the wall clock: the trigger runs in the
    triggerer, not in the process that started the attempt. Past the attempt's execution_timeout
    deadline the stop is Airflow's timeout, not a user's (Airflow 2 bounds a deferral by it and then
    cancels the trigger as for a kill): recorded as that timeout, worded as in a synchronous run, and
    Airflow's retry decides what follows.

    :param base: the attempt's fields from :func:`base_record` (``started`` in ISO form).
    :param now: the time of the cancel (default: now).
    :param timeout: ``deadline`` (epoch seconds) and ``limit`` (its text) of Airflow's execution_timeout.
    """
    ended = now or datetime.now(UTC)
    secs = 0.0
    with contextlib.suppress(KeyError, ValueError, TypeError):
        secs = round((ended - datetime.fromisoformat(str(base["started"]))).total_seconds(), 2)
    outcome, action = Outcome(Status.CANCELLED, None, DEFERRED_CANCEL_REASON), Action.CANCEL
    if timeout and ended.timestamp() >= float(timeout["deadline"]):
        outcome = Outcome(Status.TIMEOUT, None, timeout_reason(timeout["limit"]))
        action = Action.RETRY
    return {
        **outcome.as_dict(),
        "action": action.value,
        **base,
        "ended": ended.isoformat(timespec="seconds"),
        "secs": max(secs, 0.0),
    }


def timeout_reason(limit: object) -> str:
    """An attempt's reason when Airflow's execution_timeout ended it (one wording, sync or deferred).

    :param limit: the execution_timeout (a timedelta, or its text).
    """
    return f"Airflow's execution_timeout ({limit}) reached; pod deleted"


def cancel_target(
    settings: RunnerSettings, *, run_id: str, path: str, record: dict[str, Any]
) -> dict[str, Any]:
    """Where the trigger records a kill while deferred (empty without a state bucket).

    :param settings: the runner settings (state bucket and root, GCP connection).
    :param run_id: the DAG run.
    :param path: the script's path.
    :param record: the attempt's fields from :func:`base_record`.
    """
    bucket = settings.effective_state_bucket
    if not bucket:
        return {}
    return {
        "bucket": bucket,
        "root": settings.state_root,
        "gcp_conn_id": settings.gcp_conn_id,
        "run_id": run_id,
        "path": path,
        "record": record,
    }


def task_timeout(spec: ScriptSpec, settings: RunnerSettings) -> timedelta:
    """Airflow's execution_timeout for a script's task: the ``execution_timeout`` setting when set, else
    the script's ``timeout`` + ``start_timeout`` + 5 minutes (the pod's own deadline comes first).

    :param spec: the script's resolved spec.
    :param settings: the runner settings.
    """
    if settings.execution_timeout:
        return timedelta(seconds=parse_duration(settings.execution_timeout))
    return timedelta(seconds=spec.timeout + spec.start_timeout + 300)


def timeout_behind(exc: BaseException) -> AirflowTaskTimeout | None:
    """Airflow's execution timeout that ``exc`` was raised while handling, if any.

    KPO deletes the pod in a ``finally`` block and raises "Pod ... returned a failure" for a pod that was
    still running, which hides the timeout that interrupted it (it stays on ``__context__``).

    :param exc: the exception the attempt ended with.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AirflowTaskTimeout):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def lost_try_pod(pod: Any, history: list[dict[str, Any]], try_number: int) -> bool:
    """Whether ``pod`` is the finished pod of an earlier try whose end Airflow lost, to adopt, not rerun.

    Airflow's scheduler can lose a try after its pod ran (a deferred trigger firing before the executor
    reported the deferral, apache/airflow#67287; a reschedule racing the worker's event, #71172): the try's
    outcome is never read and the next try finds the pod finished. The KubernetesPodOperator would delete
    it and start the script again in a new pod, whose quick end can lose the next try the same way, until
    Airflow's tries run out (seen in the soak: six pods for one script, the last one left behind). Such a
    pod is adopted instead: its outcome becomes this attempt's. Not adopted: a pod still running (KPO
    reattaches to it anyway), an evicted one (KPO starts a new pod, as it should), a pod of this try, and a
    pod an attempt record already names (its outcome was read; a retry wants a new pod).

    :param pod: the pod KPO found for this task (its labels match the run, task and map index).
    :param history: the run's earlier attempt records of this script.
    :param try_number: this attempt's Airflow try number.
    """
    status = getattr(pod, "status", None)
    phase = getattr(status, "phase", None)
    reason = str(getattr(status, "reason", None) or "").lower()
    if phase not in ("Succeeded", "Failed") or reason == "evicted":
        return False
    meta = getattr(pod, "metadata", None)
    labels = getattr(meta, "labels", None) or {}
    try:
        pod_try = int(labels.get("try_number", ""))
    except ValueError:
        return False
    name = getattr(meta, "name", None)
    return pod_try < try_number and not any(record.get("pod") == name for record in history)
