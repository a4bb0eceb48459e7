"""Waiting for a script's ``after=`` dependencies before its pod starts.

A mixin of :class:`~script_runner.run.operator.ScriptPodOperator` (before the KubernetesPodOperator in its
bases). Whether each dependency has ended, and how, comes from Airflow's state of its task (a user's clear
or "mark success" included), what a skip was from its ledger records
(:func:`~script_runner.discover.dependencies.current_verdict`); where Airflow cannot say (3.0), from the
ledger alone. While one has not ended the task frees its worker slot (a reschedule), and it is skipped
when one cannot succeed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from script_runner.config.compat import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSkipException,
    task_instance_state,
)
from script_runner.config.units import parse_duration
from script_runner.discover.dependencies import FINAL_STATES, current_verdict, verdict
from script_runner.run.policy import Action, Outcome, Status

if TYPE_CHECKING:
    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.spec import ScriptSpec
    from script_runner.run.ledger import Ledger

log = logging.getLogger(__name__)


class WaitsForDependencies:
    """The operator's wait for its script's ``after=`` dependencies (a reschedule while one runs)."""

    script_path: str
    script_spec: ScriptSpec
    runner_settings: RunnerSettings

    if TYPE_CHECKING:  # the operator's cached property; recorded by RecordsVerdicts (run/verdicts.py)

        @property
        def ledger(self) -> Ledger | None: ...

        def _record(
            self, context: Any, outcome: Outcome, action: Action, *, extra: dict[str, Any] | None = None
        ) -> None: ...

    def _wait_for_dependencies(self, context: Any) -> None:
        """Start only once every ``after=`` dependency succeeded in this run; skip when one cannot.

        While one has not ended, the task frees its worker slot (a reschedule) and looks again after
        ``dependency_poll``. Whether each dependency ended, and how: :func:`current_verdict` (Airflow's
        state, then its ledger records), or its ledger records alone where Airflow cannot say.
        """
        deps = self.script_spec.after
        if not deps:
            return
        if self.ledger is None:
            log.warning("[runner] script=%s no state bucket: cannot wait for %s", self.script_path, deps)
            return
        waiting = []
        for dep in deps:
            known, state = self._airflow_state(context, dep)
            try:
                if known and (state == "success" or state not in FINAL_STATES):  # no need for its records
                    kind, why = current_verdict(dep, [], state)
                else:
                    records = self.ledger.read(context["run_id"], dep)
                    kind, why = current_verdict(dep, records, state) if known else verdict(dep, records)
            except Exception:
                log.warning("could not read the ledger of %s; waiting", dep, exc_info=True)
                kind, why = "wait", f"{dep}: its attempts cannot be read now"
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

    def _airflow_state(self, context: Any, dep: str) -> tuple[bool, str | None]:
        """A dependency's task instance state in Airflow: ``(True, state)``, ``(False, None)`` when Airflow
        cannot say (3.0, or no task known for it): then the ledger alone decides."""
        where = self.script_spec.after_tasks.get(dep)
        if where is None:
            return False, None
        task_id, map_index = where
        try:
            state = task_instance_state(
                dag_id=context["ti"].dag_id, run_id=context["run_id"], task_id=task_id, map_index=map_index
            )
        except Exception:  # Airflow 3.0 (no such call), or the call failed: the ledger alone
            log.debug("no Airflow state for %s", dep, exc_info=True)
            return False, None
        return True, str(getattr(state, "value", state)) if state else None
