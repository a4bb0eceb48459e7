"""Done-markers: a script's success for one data interval, decided, written and read by Airflow alone.

A scheduled run is a unit of idempotency: its **interval key** (:func:`interval_key`) names the run's data
interval (``20261204T1200Z-20261204T1300Z``), or its logical time when the interval has no width
(Airflow 3's ``CronTriggerTimetable``: ``20261204T1300Z``), or, for a run without a logical date (Airflow 3's
manual and asset-triggered runs), the day it was triggered (``2026-12-04``). An hourly DAG's 24 runs of a
day are 24 units.

The marker of (script, content md5, interval) lives at ``<state root>/cache/done/<script>/<md5 hex>/<key>``
(``cache/`` is written by the Airflow identity only; pods can neither write nor read it). The task writes it
after its pod ended with exit 0, before the pod is deleted; the next task of the same interval reads it
before any pod: another run's marker (or this run's from before a user's clear) skips the script without a
pod, this run's own (its end was lost with the task) ends the task as a success. So no pod can make another
script look done (issue 25 item 8).

A mixin of :class:`~script_runner.run.operator.ScriptPodOperator` (before the KubernetesPodOperator in its
bases), and the pure helpers it uses. Markers are read and written over plain HTTP with the ledger's
:class:`~script_runner.run.gcs_write.GcsWriter` when the connection allows it (a run task then imports no
storage client), else through the ledger's storage client.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from script_runner.config.compat import AirflowException, AirflowSkipException
from script_runner.run.attempts import max_tries
from script_runner.run.policy import Action, Outcome, Status

if TYPE_CHECKING:
    from collections.abc import Callable

    from google.cloud.storage import Client

    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.spec import ScriptSpec
    from script_runner.run.gcs_write import GcsWriter
    from script_runner.run.ledger import Ledger

log = logging.getLogger(__name__)

MARKER_PREFIX = "cache/done"  # under the state root; cache/ is the Airflow identity's alone


def stamp(moment: datetime) -> str:
    """A moment in a path-safe UTC form: ``20261204T1300Z``, with seconds (and microseconds) when set.

    :param moment: an aware datetime (naive ones are taken as UTC).
    """
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if utc.microsecond:
        return utc.strftime("%Y%m%dT%H%M%S.%fZ")
    if utc.second:
        return utc.strftime("%Y%m%dT%H%M%SZ")
    return utc.strftime("%Y%m%dT%H%MZ")


def _run_after(context: Any) -> datetime | None:
    value = getattr(context.get("dag_run"), "run_after", None)
    return value if isinstance(value, datetime) else None


def interval_key(context: Any) -> str:
    """The run's unit of idempotency, path-safe (see the module docstring).

    ``start-end`` of the data interval when it has a width; else the logical date. A run without a logical
    date (Airflow 3's manual and asset-triggered runs) has no interval: its unit is the day it was
    triggered (``run_after``'s date, the same for every try), as every run's was before intervals, so a
    manual run again the same day skips what succeeded (``rerun`` forces it).

    :param context: the task's context (Airflow 2.11 and 3.x both put the data interval in it).
    """
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if isinstance(start, datetime) and isinstance(end, datetime) and start < end:
        return f"{stamp(start)}-{stamp(end)}"
    logical = context.get("logical_date")
    if isinstance(logical, datetime):
        return stamp(logical)
    return logical_day(context)


def logical_day(context: Any) -> str:
    """``RUNNER_LOGICAL_DATE``: the run's logical date as ``YYYY-MM-DD`` (for scripts that want a date).

    :param context: the task's context.
    """
    for point in (context.get("logical_date"), _run_after(context)):
        if isinstance(point, datetime):
            return point.strftime("%Y-%m-%d")
    return datetime.now(UTC).strftime("%Y-%m-%d")


def md5_hex(md5_base64: str) -> str:
    """GCS's base64 md5 as hex ("" when empty or not base64), as the runner library writes it."""
    try:
        return base64.b64decode(md5_base64, validate=True).hex() if md5_base64 else ""
    except (binascii.Error, ValueError):
        return ""


class DoneMarkers:
    """Read and write done-markers under ``gs://<bucket>/<root>/cache/done/``.

    :param client: gives the storage client, asked only when there is no ``writer``.
    :param writer: reads and writes over plain HTTP (:mod:`script_runner.run.gcs_write`) instead.
    """

    def __init__(
        self, client: Callable[[], Client], *, bucket: str, root: str, writer: GcsWriter | None = None
    ) -> None:
        self.client = client
        self.writer = writer
        self.bucket = bucket
        self.root = root.strip("/")

    def object_name(self, path: str, md5: str, interval: str) -> str | None:
        """The marker of a script's content for one interval (None for content without an md5).

        :param path: the script's path in the source.
        :param md5: its base64 md5 as discovery pinned it.
        :param interval: the run's :func:`interval_key`.
        """
        hexed = md5_hex(md5)
        return f"{self.root}/{MARKER_PREFIX}/{path}/{hexed}/{interval}" if hexed else None

    def read(self, name: str) -> dict[str, Any] | None:
        """The marker's record, or None when there is none (errors are raised: never guess)."""
        if self.writer is not None:
            raw = self.writer.read(self.bucket, name)
            if raw is None:
                return None
            data = json.loads(raw)
        else:
            from google.api_core.exceptions import NotFound

            try:
                data = json.loads(self.client().bucket(self.bucket).blob(name).download_as_bytes())
            except NotFound:
                return None
        return data if isinstance(data, dict) else {}

    def write(self, name: str, record: dict[str, Any]) -> None:
        """Write (or replace, after a ``rerun``) a marker."""
        if self.writer is not None:
            self.writer.write(self.bucket, name, json.dumps(record).encode())
            return
        blob = self.client().bucket(self.bucket).blob(name)
        blob.upload_from_string(json.dumps(record), content_type="application/json")


def earlier_success(marker: dict[str, Any], *, run_id: str, tries: int | None) -> bool:
    """Whether a marker is this run's own success since the last clear (its end was lost with the task).

    Another run's marker, or this run's from before a user's clear (a clear raises ``max_tries``), is not:
    that interval is done, and the script is skipped.

    :param marker: the marker's record.
    :param run_id: this run.
    :param tries: this try's ``max_tries`` (None when Airflow does not say).
    """
    if marker.get("run") != run_id:
        return False
    written = marker.get("max_tries")
    return not (isinstance(written, int) and isinstance(tries, int) and written < tries)


class ChecksDoneMarkers:
    """The operator's done-marker check before its pod and the marker it writes after a success."""

    script_path: str
    script_spec: ScriptSpec
    runner_settings: RunnerSettings
    _context: Any
    _cancelled: bool

    if TYPE_CHECKING:  # the operator's cached property; recorded by RecordsVerdicts (run/verdicts.py)

        @property
        def ledger(self) -> Ledger | None: ...

        def _record(
            self, context: Any, outcome: Outcome, action: Action, *, extra: dict[str, Any] | None = None
        ) -> None: ...

        def _pod_name(self) -> str | None: ...

    @cached_property
    def done_markers(self) -> DoneMarkers | None:
        """The markers' store, on the ledger's plain-HTTP writer or client (None without a state bucket)."""
        ledger = self.ledger
        if ledger is None:
            return None
        return DoneMarkers(
            lambda: ledger.client, bucket=ledger.bucket, root=ledger.root, writer=ledger.writer
        )

    def _marker_name(self, context: Any) -> str | None:
        store = self.done_markers
        if store is None:
            return None
        return store.object_name(self.script_path, self.script_spec.md5, interval_key(context))

    def _done_for_interval(self, context: Any, *, rerun: bool) -> bool:
        """Act on the script's done-marker for this run's interval, before any pod.

        Returns True when this run already succeeded (its marker outlived a lost task end): the task ends
        as a success without a pod. Raises AirflowSkipException when another run (or this run before a
        clear) did: the interval is done. False when there is no marker, or with ``rerun``. A marker that
        cannot be read fails the try (Airflow retries it): the script never runs on an unknown answer.

        :param context: the task's context.
        :param rerun: the run's ``rerun`` option (markers ignored).
        """
        name = self._marker_name(context)
        if rerun or name is None or self.done_markers is None:
            return False
        try:
            marker = self.done_markers.read(name)
        except Exception as exc:
            raise AirflowException(
                f"{self.script_path}: the done-marker gs://{self.done_markers.bucket}/{name} could not be "
                f"read ({type(exc).__name__}): not running on an unknown answer; Airflow retries the task"
            ) from exc
        if marker is None:
            return False
        run = marker.get("run")
        if earlier_success(marker, run_id=context["run_id"], tries=max_tries(context)):
            reason = f"succeeded in an earlier try of this run (done-marker, try {marker.get('try')})"
            log.warning(
                "[runner] script=%s status=success reason=%s: not run again", self.script_path, reason
            )
            self._record(context, Outcome(Status.SUCCESS, 0, reason), Action.DONE)
            return True
        reason = (
            f"already done for interval {interval_key(context)} (done-marker of run {run}); "
            "trigger with rerun to run it again"
        )
        log.info(
            "[runner] script=%s status=skipped reason=done-marker marker=gs://%s/%s run=%s "
            'fix="trigger with {\\"rerun\\": true} to run again"',
            self.script_path,
            self.done_markers.bucket,
            name,
            run,
        )
        self._record(context, Outcome(Status.SKIPPED, None, reason), Action.SKIP)
        raise AirflowSkipException(f"{self.script_path}: skipped: {reason}")

    def _mark_done(self) -> None:
        """Write the done-marker of this run's interval after the pod ended with exit 0 (never fails)."""
        context = self._context
        name = self._marker_name(context) if context is not None else None
        if name is None or self.done_markers is None or self._cancelled:
            return
        record = {
            "run": context["run_id"],
            "try": getattr(context.get("ti"), "try_number", None),
            "max_tries": max_tries(context),
            "interval": interval_key(context),
            "pod": self._pod_name(),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            self.done_markers.write(name, record)
        except Exception:
            log.warning(
                "[runner] script=%s done-marker=not-written (the next run of this interval runs it again)",
                self.script_path,
                exc_info=True,
            )
