"""ScriptPodOperator: the real KubernetesPodOperator, configured from a script's spec, plus our policies.

Mapped over discovery's output (one task instance per script). At run time Airflow builds the operator
with the script's spec; the pod is built by :mod:`script_runner.run.pod_spec`. This module holds the
operator's lifecycle only; the policy glue is in mixins beside it: the try history checks
(:mod:`script_runner.run.history`), the wait for ``after=`` dependencies (:mod:`script_runner.run.waiting`),
an ended attempt's outcome, decision, action and ledger record (:mod:`script_runner.run.verdicts`; the
record: :mod:`script_runner.run.attempts`, the decision: :mod:`script_runner.run.policy`) and the adoption
of a lost try's pod (:mod:`script_runner.run.adoption`). Before anything else a try holds its plan against
the current settings (:mod:`script_runner.run.plan_check`): a plan from XCom is not trusted as it is.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

from script_runner.config.compat import (
    AirflowFailException,
    AirflowSkipException,
    AirflowTaskTimeout,
    TaskDeferred,
    parent_execute_kwargs,
    quiet_failure_kwargs,
)
from script_runner.config.params import run_options
from script_runner.run import pod_spec, worker_guard
from script_runner.run.adoption import AdoptsLostTryPods
from script_runner.run.attempts import (
    CANCEL_REASON,
    cancel_target,
    count_status,
    task_timeout,
    timeout_behind,
)
from script_runner.run.done_markers import ChecksDoneMarkers, interval_key, logical_day
from script_runner.run.history import ChecksTryHistory
from script_runner.run.ledger import Ledger, ledger_for_connection
from script_runner.run.log_redaction import redact_pod_logs
from script_runner.run.plan_check import ChecksPlanAgainstSettings, task_settings
from script_runner.run.pod_logs import CatchUpPodManager
from script_runner.run.policy import Action, Outcome, Status, classify
from script_runner.run.usage import parse_end_line, read_pod_usage
from script_runner.run.verdicts import RecordsVerdicts
from script_runner.run.waiting import WaitsForDependencies

if TYPE_CHECKING:
    from collections.abc import Sequence

    from kubernetes.client import models as k8s

    from script_runner.config.settings import RunnerSettings

log = logging.getLogger(__name__)


class ScriptPodOperator(  # type: ignore[misc]
    ChecksPlanAgainstSettings,
    ChecksTryHistory,
    WaitsForDependencies,
    ChecksDoneMarkers,
    RecordsVerdicts,
    AdoptsLostTryPods,
    KubernetesPodOperator,
):
    """Run one discovered script in its own pod.

    :param script: the script's spec as discovery returned it (a dict, from XCom). The task runs with the
        current settings, read once when it is built, and holds the plan's image, identity, secrets and
        env against them before its pod (:mod:`script_runner.run.plan_check`). A plan discovered by an
        earlier release carries the run's settings under ``settings``: those are used, and held against
        the current ones.
    :param runner_settings: resolved settings, when the DAG code passes its own: the plan is held against
        them instead of the Variable.
    """

    # Nothing is templated: script paths and env values are data, never Jinja.
    template_fields: Sequence[str] = ()

    def __init__(
        self, *, script: dict[str, Any], runner_settings: RunnerSettings | None = None, **kwargs: Any
    ) -> None:
        # Imported here, when a task builds its operator: the DAG file's parse needs no pydantic model.
        from script_runner.discover.spec import ScriptSpec

        # The current settings (one Variable read), or the DAG code's; plan_check holds the plan to them.
        settings, self._settings_from_plan, self._settings_error = task_settings(script, runner_settings)
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
        self._settled = False  # its pod succeeded and the success is recorded (cleanup, before deletion)
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
        return ledger_for_connection(
            self.runner_settings.gcp_conn_id, bucket=bucket, root=self.runner_settings.state_root
        )

    @cached_property
    def pod_manager(self) -> CatchUpPodManager:
        """KPO's pod manager, which also reads the end of a log whose stream broke (see pod_logs), and whose
        log calls never show env values (see log_redaction)."""
        manager: CatchUpPodManager = redact_pod_logs(
            CatchUpPodManager(kube_client=self.client, callbacks=self.callbacks)
        )
        return manager

    # -- launch -------------------------------------------------------------------------------------
    def execute(self, context: Any) -> Any:
        """Name the pod for this attempt, size it after earlier OOMs, then run it as KPO does."""
        worker_guard.die_with_worker()  # an orphan of a lost worker must not act on the pod
        ti = context["ti"]
        run_id = context["run_id"]
        self._context, self._recorded, self._settled, self._usage = context, False, False, {}
        self._refuse_untrusted_plan(context)
        history = self._history(context)
        self._earlier, self._adopted = history, None
        self._refuse_after_final_verdict(history)
        if self._succeeded_already(history):
            return None
        self._wait_for_dependencies(context)
        conf = getattr(context.get("dag_run"), "conf", None) or {}
        rerun = run_options(context.get("params"), conf).rerun or self.runner_settings.rerun
        if self._done_for_interval(context, rerun=rerun):
            return None
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
        self.env_vars = [
            *self.env_vars,
            *pod_spec.env_list(
                pod_spec.run_env(
                    dag_id=ti.dag_id,
                    run_id=run_id,
                    try_number=ti.try_number,
                    logical_date=logical_day(context),
                    interval=interval_key(context),
                    rerun=rerun,
                )
            ),
        ]
        self._started = time.monotonic()
        self._started_at = datetime.now(UTC)
        # Through the class, not super(): Airflow 2's safeguard wants its sentinel handed on (compat).
        parent = KubernetesPodOperator.execute
        return self._guarded(context, lambda: parent(self, context, **parent_execute_kwargs(self)), history)

    def trigger_reentry(self, context: Any, event: dict[str, Any]) -> Any:
        """Deferrable mode: the trigger reported back; finish as KPO does, under the same policies."""
        worker_guard.die_with_worker()
        self._context, self._recorded, self._settled, self._usage = context, False, False, {}
        history = self._history(context)
        self._event_pod = _pod_ref(event)
        return self._guarded(context, lambda: self._reenter(context, event), history)

    def _reenter(self, context: Any, event: dict[str, Any]) -> Any:
        """KPO's reentry; its trigger's end at Airflow's execution_timeout is that timeout.

        From cncf-kubernetes 10.18 on, the deferrable trigger enforces ``execution_timeout`` itself: at the
        deadline (the try's start plus the timeout) it fires a ``timeout`` event and KPO fails the task
        with that message, after deleting the pod; Airflow's own backstop (the deferral's timeout) is set a
        minute or more later, so only this one fires. It is raised as Airflow's timeout, so it is recorded,
        decided and worded as in a synchronous run (:meth:`_interrupted`), once.
        """
        try:
            return super().trigger_reentry(context, event)
        except Exception as exc:
            if event.get("status") == "timeout" and "execution_timeout" in str(event.get("message", "")):
                raise AirflowTaskTimeout(str(event["message"])) from exc
            raise

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
            start = getattr(self._context["ti"], "start_date", None)
            if target and self.execution_timeout and start is not None:  # a stop past it is the timeout
                deadline = start.timestamp() + self.execution_timeout.total_seconds()
                target["timeout"] = {"deadline": deadline, "limit": str(self.execution_timeout)}
            trigger = ScriptPodTrigger(cancel_record=target, **trigger_kwargs)
        return super().defer(trigger=trigger, method_name=method_name, **kwargs)

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
        """Read the outcome and the usage, and mark a success done, before KPO deletes the pod
        (signature-compatible with 10.5+)."""
        self._outcome = classify(remote_pod, None)
        phase = getattr(getattr(remote_pod, "status", None), "phase", None)
        if phase in ("Succeeded", "Failed") and pod is not None:
            streamed = self.pod_manager.streamed_end_line(pod, self.base_container_name)
            usage = parse_end_line(streamed) if streamed else {}
            # Without the streamed end line (logs off, or not seen), from the end of the pod's log.
            self._usage = usage or read_pod_usage(self.client, pod, container=self.base_container_name)
        if self._outcome.status is Status.SUCCESS:  # before the pod goes: a lost task end finds them
            self._settle_success()
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
            if self._settled:  # the pod succeeded and was recorded (cleanup); its deletion failed
                self._failed_after_success(exc)
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
            if not self._cancelled and not self._settled:
                self._interrupted(context, exc, history)
            raise
        if self._cancelled:  # KPO may return quietly once on_kill deleted its pod: never a success
            raise AirflowFailException(f"{self.script_path}: {CANCEL_REASON}")
        if not self._settled:  # a success is recorded in cleanup, before the pod's deletion
            self._record(context, self._outcome or Outcome(Status.SUCCESS, 0), Action.DONE)
        return result


def _pod_ref(event: dict[str, Any]) -> k8s.V1Pod | None:
    """The trigger's pod by name, for reading its events when the pod itself is gone."""
    from kubernetes.client import models as k8s_models

    if not event.get("name"):
        return None
    meta = k8s_models.V1ObjectMeta(name=event["name"], namespace=event.get("namespace"))
    return k8s_models.V1Pod(metadata=meta)
