"""ScriptPodOperator: the real KubernetesPodOperator, configured from a script's spec, plus our policies.

Mapped over discovery's output (one task instance per script). At run time Airflow builds the operator
with the script's spec; the pod is built by :mod:`script_runner.run.pod_spec`. After each attempt the outcome
is recorded in the ledger (the record: :mod:`script_runner.run.attempts`) and turned into retry / fail /
skip / reschedule by :mod:`script_runner.run.policy`. This module holds the operator's lifecycle only.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

from script_runner.config.compat import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSkipException,
    AirflowTaskTimeout,
    TaskDeferred,
    parent_execute_kwargs,
    quiet_failure_kwargs,
)
from script_runner.config.params import run_options
from script_runner.config.settings import RunnerSettings, settings_from_wire
from script_runner.config.settings_loader import load_settings_from_airflow
from script_runner.config.units import parse_duration
from script_runner.discover.dependencies import ended_without_record, verdict
from script_runner.discover.spec import ScriptSpec
from script_runner.run import pod_spec, worker_guard
from script_runner.run.adoption import AdoptsLostTryPods
from script_runner.run.attempts import (
    CANCEL_REASON,
    attempt_number,
    attempt_record,
    base_record,
    cancel_target,
    count_status,
    first_attempt,
    max_tries,
    task_timeout,
    timeout_behind,
)
from script_runner.run.ledger import Ledger, since_last_clear
from script_runner.run.policy import (
    Action,
    Outcome,
    Status,
    classify,
    decide,
    disruption_from_events,
    retry_due,
)
from script_runner.run.usage import read_pod_usage

if TYPE_CHECKING:
    from collections.abc import Sequence

    from kubernetes.client import models as k8s

log = logging.getLogger(__name__)

# A wait shorter than this is slept in place instead of rescheduled: a reschedule due before the worker's
# "finished" event for this attempt is drained makes Airflow's scheduler mark the instance up_for_retry
# (apache/airflow#71172), which spends an Airflow try; a few seconds of a held slot cost less.
SLEEP_IN_PLACE_SECONDS = 15.0


class ScriptPodOperator(AdoptsLostTryPods, KubernetesPodOperator):  # type: ignore[misc]
    """Run one discovered script in its own pod.

    :param script: the script's spec as discovery returned it (a dict, from XCom). Its ``settings`` key,
        when present, is the run's resolved settings in their wire form (discovery hands them over, so a
        task does not read the Variable again).
    :param runner_settings: resolved settings; from ``script["settings"]``, else read from the
        Variable/env at run time, when omitted.
    """

    # Nothing is templated: script paths and env values are data, never Jinja.
    template_fields: Sequence[str] = ()

    def __init__(
        self, *, script: dict[str, Any], runner_settings: RunnerSettings | None = None, **kwargs: Any
    ) -> None:
        wire = script.get("settings")
        settings = runner_settings or (
            settings_from_wire(wire) if isinstance(wire, dict) else load_settings_from_airflow()
        )
        spec = ScriptSpec.model_validate(script)
        self.script_spec = spec
        self.script_path = spec.path
        self.runner_settings = settings
        self._outcome: Outcome | None = None
        self._ledger_read = False
        self._event_pod: k8s.V1Pod | None = None
        self._earlier: list[dict[str, Any]] = []  # this run's attempt records before this attempt
        self._adopting = False  # inside get_or_create_pod: a lost try's finished pod may be adopted
        self._adopted: k8s.V1Pod | None = None
        self._context: Any = None
        self._cancelled = False
        self._recorded = False  # this attempt is in the ledger (on_kill after a timeout adds nothing)
        self._memory = spec.memory
        self._usage: dict[str, Any] = {}  # the attempt's CPU time and peak memory (its end line)
        self._started = time.monotonic()
        self._started_at = datetime.now(UTC)
        merged = {**pod_spec.operator_kwargs(spec, settings), **quiet_failure_kwargs(), **kwargs}
        merged["env_vars"] = pod_spec.env_list(pod_spec.script_env(spec, settings))
        if merged.get("execution_timeout") is None:  # partial() passes None explicitly when mapped
            merged["execution_timeout"] = task_timeout(spec, settings)
        super().__init__(**merged)

    # -- helpers ------------------------------------------------------------------------------------
    @cached_property
    def ledger(self) -> Ledger | None:
        """Attempt ledger in the state bucket (None when no bucket is configured)."""
        bucket = self.runner_settings.effective_state_bucket
        if not bucket:
            return None
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        client = GCSHook(gcp_conn_id=self.runner_settings.gcp_conn_id).get_conn()
        return Ledger(client, bucket=bucket, root=self.runner_settings.state_root)

    def _attempt_number(self, try_number: int, history: list[dict[str, Any]]) -> int:
        """This attempt's number as the script's retries count it: from the ledger when it was read."""
        return attempt_number(try_number, history, ledger_read=self._ledger_read)

    def _history(self, context: Any) -> list[dict[str, Any]]:
        """This run's earlier attempts since a user last cleared the task (``since_last_clear``).

        A first try never rescheduled has none: the ledger is not read (no storage client, no round trip
        before the pod on the common path).
        """
        self._ledger_read = False
        if first_attempt(context):
            self._ledger_read = bool(self.runner_settings.effective_state_bucket)
            return []
        try:
            history = self.ledger.read(context["run_id"], self.script_path) if self.ledger else []
            self._ledger_read = self.ledger is not None
            return since_last_clear(history, max_tries(context))
        except Exception:
            log.warning(
                "could not read the attempt ledger of %s; assuming no earlier attempts",
                self.script_path,
                exc_info=True,
            )
            return []

    # -- launch -------------------------------------------------------------------------------------
    def execute(self, context: Any) -> Any:
        """Name the pod for this attempt, size it after earlier OOMs, then run it as KPO does."""
        worker_guard.die_with_worker()  # an orphan of a lost worker must not act on the pod
        ti = context["ti"]
        run_id = context["run_id"]
        self._context, self._recorded, self._usage = context, False, {}
        history = self._history(context)
        self._earlier, self._adopted = history, None
        self._refuse_after_final_verdict(history)
        if self._succeeded_already(history):
            return None
        self._wait_for_dependencies(context)
        self._wait_for_own_retry_delay(history)
        ooms = count_status(history, Status.OOM)
        self._memory = pod_spec.memory_for_attempt(self.script_spec, self.runner_settings, ooms)
        if self._memory != self.script_spec.memory:
            log.info(
                "[runner] script=%s memory=%s reason=after %d OOMKilled attempt(s)",
                self.script_path,
                self._memory,
                ooms,
            )
            self.container_resources = pod_spec.resources(
                self.script_spec, self._memory, settings=self.runner_settings
            )
        self.name = pod_spec.pod_name(self.script_path, run_id, ti.try_number)
        logical = (
            context.get("logical_date")
            or getattr(context.get("dag_run"), "run_after", None)
            or datetime.now(UTC)
        )
        conf = getattr(context.get("dag_run"), "conf", None) or {}
        self.env_vars = [
            *self.env_vars,
            *pod_spec.env_list(
                pod_spec.run_env(
                    dag_id=ti.dag_id,
                    run_id=run_id,
                    try_number=ti.try_number,
                    logical_date=logical.strftime("%Y-%m-%d"),
                    rerun=run_options(context.get("params"), conf).rerun or self.runner_settings.rerun,
                )
            ),
        ]
        self._started = time.monotonic()
        self._started_at = datetime.now(UTC)
        # Through the class, not super(): Airflow 2's safeguard wants its sentinel handed on (compat).
        parent = KubernetesPodOperator.execute
        return self._guarded(context, lambda: parent(self, context, **parent_execute_kwargs(self)), history)

    def _succeeded_already(self, history: list[dict[str, Any]]) -> bool:
        """Whether an attempt of this run (since the last clear) succeeded: then this try ends at once.

        Airflow can run the task again after a success when its scheduler lost that try's end (the soak:
        a success recorded, then "Failed to report terminal task state", then a new try). A new pod would
        find the script's done marker and record a second success; no pod is started at all instead. A
        user's clear drops the earlier records (``since_last_clear``), so a cleared task runs again.
        """
        if not history or history[-1].get("action") != Action.DONE.value:
            return False
        last = history[-1]
        log.warning(
            "%s: already succeeded in this run (attempt try %s, pod %s); Airflow lost that try's end: "
            "not run again",
            self.script_path,
            last.get("try_number"),
            last.get("pod"),
        )
        return True

    def _refuse_after_final_verdict(self, history: list[dict[str, Any]]) -> None:
        """Never run the script again once an attempt of this run was failed for good.

        Airflow can retry an instance whose attempt already raised AirflowFailException when its scheduler
        loses that attempt's state (apache/airflow#67287, #71172); the script must not run a third time
        with retries=1. The verdict comes from the attempt ledger, so it holds across tries.
        """
        if history and history[-1].get("action") == Action.FAIL.value:
            last = history[-1]
            raise AirflowFailException(
                f"{self.script_path}: already failed in this run ({last.get('status')}, exit "
                f"{last.get('exit_code')}, attempt {len(history)}): not run again. Airflow retried the task "
                "after its final failure (a scheduler race); the report and the earlier try's log have it"
            )

    def _wait_for_dependencies(self, context: Any) -> None:
        """Start only once every ``after=`` dependency succeeded in this run; skip when one cannot.

        While one has not ended, the task frees its worker slot (a reschedule) and looks again after
        ``dependency_poll``. What each dependency did comes from its ledger records (:func:`verdict`).
        """
        deps = self.script_spec.after
        if not deps:
            return
        if self.ledger is None:
            log.warning("[runner] script=%s no state bucket: cannot wait for %s", self.script_path, deps)
            return
        waiting = []
        for dep in deps:
            try:
                kind, why = verdict(dep, self.ledger.read(context["run_id"], dep))
            except Exception:
                log.warning("could not read the ledger of %s; waiting", dep, exc_info=True)
                kind, why = "wait", f"{dep}: its attempts cannot be read now"
            if kind == "wait":
                kind, why = self._airflow_says(context, dep) or (kind, why)
            if kind == "skip":
                skipped = Outcome(Status.SKIPPED, None, why)
                self._record(context, skipped, Action.SKIP, extra={"dependency": dep})
                log.warning("[runner] script=%s status=skipped reason=%s", self.script_path, why)
                raise AirflowSkipException(f"{self.script_path}: skipped: {why}")
            if kind == "wait":
                waiting.append(why)
        if not waiting:
            log.info("[runner] script=%s dependencies=%s status=succeeded", self.script_path, ",".join(deps))
            return
        now = datetime.now(UTC)
        started = getattr(context.get("dag_run"), "start_date", None) or now
        limit = timedelta(seconds=parse_duration(self.runner_settings.max_dependency_wait))
        if now - started > limit:
            reason = (
                f"waited past max_dependency_wait={self.runner_settings.max_dependency_wait}: {waiting[0]}"
            )
            self._record(context, Outcome(Status.FAILED, None, reason), Action.FAIL)
            raise AirflowFailException(f"{self.script_path}: {reason}")
        due = now + timedelta(seconds=parse_duration(self.runner_settings.dependency_poll))
        log.info(
            "[runner] script=%s status=waiting until=%s reason=%s",
            self.script_path,
            due.isoformat(timespec="seconds"),
            "; ".join(waiting),
        )
        raise AirflowRescheduleException(due)  # type: ignore[no-untyped-call]

    def _airflow_says(self, context: Any, dep: str) -> tuple[str, str] | None:
        """A dependency's final Airflow state when the ledger has none (Airflow 3.1+; None before)."""
        where = self.script_spec.after_tasks.get(dep)
        if where is None:
            return None
        task_id, map_index = where
        ti = context["ti"]
        try:
            raw = ti.get_task_states(
                dag_id=ti.dag_id, map_index=map_index, task_ids=[task_id], run_ids=[context["run_id"]]
            )
        except Exception:  # not available before Airflow 3.1: wait on the ledger alone
            return None
        state = (raw or {}).get(context["run_id"], {}).get(f"{task_id}_{map_index}")
        return ended_without_record(dep, str(getattr(state, "value", state)) if state else None)

    def _wait_for_own_retry_delay(self, history: list[dict[str, Any]]) -> None:
        """Apply the script's ``retry_delay`` backoff above Airflow's DAG-level one (a reschedule, no try)."""
        due = retry_due(
            history,
            self.script_spec,
            max_delay=parse_duration(self.runner_settings.max_retry_delay),
            now=datetime.now(UTC),
        )
        if due is None:
            return
        log.info(
            "[runner] script=%s status=waiting until=%s reason=retry_delay=%ss, doubled per failed attempt",
            self.script_path,
            due.isoformat(timespec="seconds"),
            self.script_spec.retry_delay,
        )
        remaining = (due - datetime.now(UTC)).total_seconds()
        if remaining <= SLEEP_IN_PLACE_SECONDS:
            time.sleep(max(0.0, remaining))
            return
        raise AirflowRescheduleException(due)  # type: ignore[no-untyped-call]

    def trigger_reentry(self, context: Any, event: dict[str, Any]) -> Any:
        """Deferrable mode: the trigger reported back; finish as KPO does, under the same policies."""
        worker_guard.die_with_worker()
        self._context, self._recorded, self._usage = context, False, {}
        history = self._history(context)
        self._event_pod = self._pod_ref(event)
        return self._guarded(
            context, lambda: super(ScriptPodOperator, self).trigger_reentry(context, event), history
        )

    def defer(self, *, trigger: Any, method_name: str, **kwargs: Any) -> Any:
        """Defer on KPO's trigger, swapped for ours: a user's kill while deferred then lands in the ledger.

        Without it a task marked failed while its pod ran in deferrable mode left no attempt record (the
        task process is gone; only the triggerer sees the kill) and the report said a bare "failed".
        """
        from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger

        from script_runner.run.trigger import ScriptPodTrigger

        if type(trigger) is KubernetesPodTrigger and self._context is not None:
            _, trigger_kwargs = trigger.serialize()
            target = cancel_target(
                self.runner_settings,
                run_id=self._context["run_id"],
                path=self.script_path,
                record=self._base_record(self._context),
            )
            trigger = ScriptPodTrigger(cancel_record=target, **trigger_kwargs)
        return super().defer(trigger=trigger, method_name=method_name, **kwargs)

    @staticmethod
    def _pod_ref(event: dict[str, Any]) -> k8s.V1Pod | None:
        """The trigger's pod by name, for reading its events when the pod itself is gone."""
        from kubernetes.client import models as k8s_models

        if not event.get("name"):
            return None
        meta = k8s_models.V1ObjectMeta(name=event["name"], namespace=event.get("namespace"))
        return k8s_models.V1Pod(metadata=meta)

    def on_kill(self) -> None:
        """Stopped from outside (a user marked the task failed or success, or its worker shut down).

        Airflow calls this while ``execute`` is running. KPO deletes the pod; the attempt is recorded as
        ``cancelled`` here, at once: the task process may be killed right after, and what ``execute`` sees
        next (the pod gone: a 404; or Airflow 2's AirflowTaskTerminated) is not the script's failure.
        Airflow also calls it after an execution timeout, which ``_guarded`` has recorded already.
        """
        self._cancelled = True
        log.warning(
            "[runner] script=%s status=cancelled reason=stopped outside the task; deleting pod %s",
            self.script_path,
            self.name,
        )
        try:
            super().on_kill()
        finally:
            if self._context is not None and not self._recorded:
                self._record(self._context, Outcome(Status.CANCELLED, None, CANCEL_REASON), Action.CANCEL)

    def cleanup(self, pod: k8s.V1Pod, remote_pod: k8s.V1Pod, *args: Any, **kwargs: Any) -> None:
        """Read the outcome and the usage before KPO deletes the pod (signature-compatible with 10.5+)."""
        self._outcome = classify(remote_pod, None)
        phase = getattr(getattr(remote_pod, "status", None), "phase", None)
        if phase in ("Succeeded", "Failed") and pod is not None:
            self._usage = read_pod_usage(self.client, pod, container=self.base_container_name)
        super().cleanup(pod, remote_pod, *args, **kwargs)

    # -- policies -----------------------------------------------------------------------------------
    def _guarded(self, context: Any, run: Any, history: list[dict[str, Any]]) -> Any:
        try:
            result = run()
        except TaskDeferred:
            raise
        except AirflowSkipException:
            skipped = Outcome(Status.SKIPPED, self._exit_code(), self._skip_reason())
            self._record(context, skipped, Action.SKIP)
            raise
        except Exception as exc:
            if self._cancelled:  # on_kill recorded it; the 404 of the deleted pod is not the script's
                raise
            timeout = timeout_behind(exc)
            if timeout is not None:  # KPO's cleanup raised "returned a failure" over Airflow's timeout
                self._interrupted(context, timeout, history)
                raise
            outcome = self._outcome_for(exc)
            action = self._decide(context, outcome, history)
            self._record(context, outcome, action)
            self._act(outcome, action, history, exc)
            raise
        except BaseException as exc:  # Airflow's execution_timeout, termination, interrupts
            if not self._cancelled:
                self._interrupted(context, exc, history)
            raise
        if self._cancelled:  # KPO may return quietly once on_kill deleted its pod: never a success
            raise AirflowFailException(f"{self.script_path}: {CANCEL_REASON}")
        self._record(context, self._outcome or Outcome(Status.SUCCESS, 0), Action.DONE)
        return result

    def _interrupted(self, context: Any, exc: BaseException, history: list[dict[str, Any]]) -> None:
        """Record an attempt ended by Airflow rather than by its pod; fail for good past the retries."""
        if not isinstance(exc, AirflowTaskTimeout):
            reason = f"stopped outside the task ({type(exc).__name__}); pod deleted"
            self._record(context, Outcome(Status.CANCELLED, None, reason), Action.CANCEL)
            return
        outcome = Outcome(
            Status.TIMEOUT,
            self._exit_code(),
            f"Airflow's execution_timeout ({self.execution_timeout}) reached; pod deleted",
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
            return self.pod_manager.read_pod(pod)
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
        ti = context["ti"]
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
            ti.try_number,
            outcome.status.value,
            outcome.exit_code,
            record["secs"],
        )
        self._recorded = True
        if self.ledger is None:
            return
        try:
            self.ledger.append(context["run_id"], self.script_path, record)
        except Exception:
            log.warning("could not write the attempt ledger for %s", self.script_path, exc_info=True)

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
