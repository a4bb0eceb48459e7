"""An attempt's end: its outcome, the decision on it, the action taken and the ledger record.

A mixin of :class:`~script_runner.run.operator.ScriptPodOperator` (before the KubernetesPodOperator in its
bases). The outcome is read from the pod (or its events when it is gone), turned into retry / fail / skip /
reschedule by :func:`~script_runner.run.policy.decide`, raised as Airflow's exception for it, and recorded
in the attempt ledger (the record: :func:`~script_runner.run.attempts.attempt_record`).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from script_runner.config.compat import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSkipException,
    AirflowTaskTimeout,
)
from script_runner.config.units import parse_duration
from script_runner.run.attempts import attempt_record, base_record, count_status, timeout_reason
from script_runner.run.policy import Action, Outcome, Status, classify, decide, disruption_from_events

if TYPE_CHECKING:
    from kubernetes.client import models as k8s

    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.spec import ScriptSpec
    from script_runner.run.ledger import Ledger

log = logging.getLogger(__name__)


class RecordsVerdicts:
    """The operator's judgement of an ended attempt: outcome, decision, action, ledger record."""

    script_path: str
    script_spec: ScriptSpec
    runner_settings: RunnerSettings
    name: str | None  # KPO's pod name for this attempt
    pod: Any  # KPO's pod, once created
    pod_manager: Any  # KPO's
    execution_timeout: timedelta | None  # Airflow's
    _outcome: Outcome | None  # read in cleanup, before KPO deletes the pod
    _event_pod: k8s.V1Pod | None  # deferrable mode: the trigger's pod, by name
    _recorded: bool
    _settled: bool  # the pod succeeded and its success is recorded (cleanup, before the pod's deletion)
    _cancelled: bool
    _context: Any
    _memory: str
    _usage: dict[str, Any]
    _started: float
    _started_at: datetime

    if TYPE_CHECKING:  # the operator's cached property; numbered by ChecksTryHistory (run/history.py)

        @property
        def ledger(self) -> Ledger | None: ...

        def _attempt_number(self, try_number: int, history: list[dict[str, Any]]) -> int: ...

        def _mark_done(self) -> None: ...  # ChecksDoneMarkers (run/done_markers.py)

    def _settle_success(self) -> None:
        """Write the done-marker and the attempt's success record side by side (two independent writes).

        Both before KPO deletes the pod, so the task's work after its pod is the deletion alone. Over the
        plain-HTTP writer only: that path asks Airflow nothing (the storage client's may read the
        connection, which a second thread must not do), else one after the other.
        """
        context = self._context
        ledger = self.ledger
        if context is None or self._cancelled:
            self._mark_done()
            return
        record = self._logged_record(context, self._outcome or Outcome(Status.SUCCESS, 0), Action.DONE)
        self._settled = True
        if ledger is None or ledger.writer is None:
            self._mark_done()
            if ledger is not None:
                self._append(ledger, context, record)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger") as pool:
            pending = pool.submit(ledger.append, context["run_id"], self.script_path, record)
            self._mark_done()
            try:
                pending.result()
            except Exception as exc:
                self._unwritten(exc_info=exc)

    def _failed_after_success(self, exc: BaseException) -> None:
        log.warning(
            "[runner] script=%s succeeded; the task failed after its pod: %s (a retry of the task ends at "
            "once as a success)",
            self.script_path,
            exc,
        )

    def _append(self, ledger: Ledger, context: Any, record: dict[str, Any]) -> None:
        """Write one record to the ledger; a failure is logged, never raised (the task's end stands)."""
        try:
            ledger.append(context["run_id"], self.script_path, record)
        except Exception:
            self._unwritten(exc_info=True)

    def _interrupted(self, context: Any, exc: BaseException, history: list[dict[str, Any]]) -> None:
        """Record an attempt ended by Airflow rather than by its pod; fail for good past the retries."""
        if not isinstance(exc, AirflowTaskTimeout):
            reason = f"stopped outside the task ({type(exc).__name__}); pod deleted"
            self._record(context, Outcome(Status.CANCELLED, None, reason), Action.CANCEL)
            return
        outcome = Outcome(
            Status.TIMEOUT,
            self._exit_code(),
            timeout_reason(self.execution_timeout),
        )
        action = self._decide(context, outcome, history)
        self._record(context, outcome, action)
        if action is Action.FAIL:  # the script's retries are used up even if Airflow's are not
            raise AirflowFailException(
                f"{self.script_path}: {outcome.reason}; no retry (the script's retries are used up)"
            ) from exc

    def _outcome_for(self, exc: BaseException) -> Outcome:
        outcome = self._outcome
        if outcome is None or outcome.status in (Status.SUCCESS, Status.ERROR):
            outcome = classify(getattr(self, "remote_pod", None) or getattr(self, "pod", None), exc)
        if outcome.status is Status.ERROR:
            fresh = self._fresh_pod()
            if fresh is None:  # the pod is gone: preempted, drained or evicted through the API?
                outcome = disruption_from_events(self._pod_events()) or classify(None, exc)
            else:
                outcome = classify(fresh, exc)
        return outcome

    def _pod_events(self) -> list[Any]:
        from script_runner.run.policy import events_of_pod

        pod = getattr(self, "pod", None) or self._event_pod
        if pod is None:
            return []
        try:
            # Listed by name: keep only this pod object's events (a reused name has older pods' events).
            events = list(self.pod_manager.read_pod_events(pod).items or [])
            return events_of_pod(events, getattr(pod.metadata, "uid", None))
        except Exception:
            log.warning("could not read the events of pod %s", getattr(pod.metadata, "name", "?"))
            return []

    def _fresh_pod(self) -> k8s.V1Pod | None:
        pod = getattr(self, "pod", None)
        if pod is None:
            return None
        try:
            return self.pod_manager.read_pod(pod)  # type: ignore[no-any-return]
        except Exception:
            return None

    def _decide(self, context: Any, outcome: Outcome, history: list[dict[str, Any]]) -> Action:
        return decide(
            outcome,
            self.script_spec,
            # Real failed attempts from the ledger, not Airflow's try number: a try lost to the scheduler
            # (e.g. its deferral race, apache/airflow#67287) must not use up the script's retries.
            try_number=self._attempt_number(context["ti"].try_number, history),
            evictions=count_status(history, Status.EVICTED),
            max_evictions=self.runner_settings.max_evictions,
        )

    def _act(
        self, outcome: Outcome, action: Action, history: list[dict[str, Any]], exc: BaseException
    ) -> None:
        log.error(
            "[runner] script=%s status=%s exit=%s action=%s reason=%s",
            self.script_path,
            outcome.status.value,
            outcome.exit_code,
            action.value,
            outcome.reason,
        )
        if action is Action.SKIP:
            raise AirflowSkipException(f"{self.script_path}: {outcome.reason or 'skip code'}") from exc
        if action is Action.RESCHEDULE:
            delay = parse_duration(self.runner_settings.eviction_delay)
            log.warning(
                "[runner] script=%s evicted (%d so far); rescheduled, not counted as a retry",
                self.script_path,
                count_status(history, Status.EVICTED) + 1,
            )
            raise AirflowRescheduleException(  # type: ignore[no-untyped-call]
                datetime.now(UTC) + timedelta(seconds=delay)
            ) from exc
        if action is Action.FAIL:
            raise AirflowFailException(
                f"{self.script_path}: {outcome.status.value} (exit {outcome.exit_code}): {outcome.reason}; "
                "no retry (fatal code, fail_on, retry_on, or the script's retries are used up)"
            ) from exc

    def _record(
        self, context: Any, outcome: Outcome, action: Action, *, extra: dict[str, Any] | None = None
    ) -> None:
        record = self._logged_record(context, outcome, action, extra=extra)
        if self.ledger is not None:
            self._append(self.ledger, context, record)

    def _logged_record(
        self, context: Any, outcome: Outcome, action: Action, *, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """This attempt's ledger record, logged and counted as recorded (the caller writes it)."""
        record = attempt_record(
            outcome,
            action,
            base=self._base_record(context),
            started=self._started,
            usage=self._usage,
            extra=extra,
        )
        log.info(
            "[runner] script=%s attempt=%s status=%s exit=%s secs=%s",
            self.script_path,
            context["ti"].try_number,
            outcome.status.value,
            outcome.exit_code,
            record["secs"],
        )
        self._recorded = True
        return record

    def _unwritten(self, **log_kwargs: Any) -> None:
        log.warning("could not write the attempt ledger for %s", self.script_path, **log_kwargs)

    def _base_record(self, context: Any) -> dict[str, Any]:
        """An attempt's fields known at its start (the ledger record adds how it ended)."""
        return base_record(
            context,
            pod=self._pod_name(),
            memory=self._memory,
            cpu=self.script_spec.cpu,
            started_at=self._started_at,
        )

    def _pod_name(self) -> str | None:
        """The pod this attempt ran in: a reattached try's is the earlier try's pod, not its own name."""
        pod = getattr(self, "pod", None) or self._event_pod
        return getattr(getattr(pod, "metadata", None), "name", None) or self.name

    def _exit_code(self) -> int | None:
        return self._outcome.exit_code if self._outcome else None

    def _skip_reason(self) -> str:
        return self._outcome.reason if self._outcome and self._outcome.reason else "skip exit code"
