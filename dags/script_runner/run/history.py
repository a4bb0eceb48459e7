"""What this run's earlier attempts of a script allow the next one: the try history checks.

A mixin of :class:`~script_runner.run.operator.ScriptPodOperator` (before the KubernetesPodOperator in its
bases). It reads the attempt ledger since the last clear, numbers the attempt as the script's retries count
it, refuses a script failed for good, ends a try whose run already succeeded, and applies the script's own
``retry_delay``. The rules themselves are in :mod:`script_runner.run.attempts` and
:mod:`script_runner.run.policy`.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from script_runner.config.compat import AirflowFailException, AirflowRescheduleException
from script_runner.config.units import parse_duration
from script_runner.run.attempts import attempt_number, first_attempt, max_tries
from script_runner.run.ledger import since_last_clear
from script_runner.run.policy import Action, retry_due

if TYPE_CHECKING:
    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.spec import ScriptSpec
    from script_runner.run.ledger import Ledger

log = logging.getLogger(__name__)

# A wait shorter than this is slept in place instead of rescheduled: a reschedule due before the worker's
# "finished" event for this attempt is drained makes Airflow's scheduler mark the instance up_for_retry
# (apache/airflow#71172), which spends an Airflow try; a few seconds of a held slot cost less.
SLEEP_IN_PLACE_SECONDS = 15.0


class ChecksTryHistory:
    """The operator's checks against this run's earlier attempts of its script (the attempt ledger)."""

    script_path: str
    script_spec: ScriptSpec
    runner_settings: RunnerSettings
    _ledger_read: bool  # the last _history read the ledger (or had no earlier attempt to read)

    if TYPE_CHECKING:  # the operator's cached property

        @property
        def ledger(self) -> Ledger | None: ...

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
