"""The deferrable pod trigger: KPO's own, plus a ledger record when a user stops the task while it waits.

In deferrable mode no task process runs while the pod does: a user's "mark failed" (or "success") reaches
the triggerer, not the operator's ``on_kill``. KPO's trigger deletes the pod then; this subclass also writes
the attempt to the ledger as ``cancelled``, so the report says what happened instead of a bare "failed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger

if TYPE_CHECKING:
    from collections.abc import Awaitable

log = logging.getLogger(__name__)

# What the trigger records; report.py words it after the task's final state (marked failed or success).
CANCEL_REASON = "stopped outside the task while deferred (marked failed or success); pod deleted"
# How long a kill may take to record and delete: under the triggerer's on_kill timeout ([triggerer]
# on_kill_timeout, 30 s by default), after which it gives up on on_kill.
KILL_BUDGET_SECS = 25.0


class ScriptPodTrigger(KubernetesPodTrigger):  # type: ignore[misc]
    """KPO's pod trigger that records a user's kill of the deferred task in the attempt ledger.

    :param cancel_record: where and what to record: ``bucket``, ``root``, ``run_id``, ``path``,
        ``gcp_conn_id`` and ``record`` (the attempt's fixed fields: try number, pod, memory, start time).
        Empty: record nothing (no state bucket).
    :param kwargs: KPO's trigger arguments, unchanged.
    """

    def __init__(self, *, cancel_record: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cancel_record = dict(cancel_record or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """KPO's arguments plus ours, under this class's path (the triggerer rebuilds it from these)."""
        _, kwargs = super().serialize()
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            **kwargs,
            "cancel_record": self.cancel_record,
        }

    def _deletes_on_kill(self) -> bool:
        """Whether KPO's trigger deletes the pod on a kill (not after its event fired, not ``keep_pod``)."""
        action = getattr(self, "on_kill_action", None)
        return not getattr(self, "_fired_event", False) and getattr(action, "value", action) == "delete_pod"

    async def on_kill(self) -> None:
        """A user stopped the task (Airflow 3.3+): the attempt is recorded, then KPO deletes the pod.

        Recorded first: a triggerer shutting down right after the kill cancels whatever is still awaited,
        and a deleted pod with no record reads as a bare "failed" in the report. Both run to their end even
        when this call is cancelled meanwhile: the triggerer sends its cancel again at every sync with its
        supervisor (about once a second) until the trigger is done, and each cancel lands inside on_kill;
        the record (a GCS write) and the delete then never happened, leaving the pod running.
        """
        if not self._deletes_on_kill():
            await super().on_kill()
            return
        await finish_despite_cancels(self._record_then_delete(), budget=KILL_BUDGET_SECS)

    async def _record_then_delete(self) -> None:
        await self.record_cancel()
        await super().on_kill()

    async def cleanup(self) -> None:
        """Before Airflow 3.3 a user's kill reaches only ``cleanup``: record it where KPO deletes the pod.

        Providers older than 10.2x have no ``safe_to_cancel`` and delete nothing here: nothing is recorded.
        """
        from airflow.providers.cncf.kubernetes import version_compat

        old_airflow = not getattr(version_compat, "AIRFLOW_V_3_3_PLUS", False)
        if old_airflow and hasattr(self, "safe_to_cancel") and self._deletes_on_kill():
            try:
                killed = await self.safe_to_cancel()
            except Exception:
                killed = False  # KPO keeps the pod then too
            if killed:
                await self.record_cancel()
        await super().cleanup()

    async def record_cancel(self) -> None:
        """Append the ``cancelled`` attempt to the ledger; a failure is logged, never raised."""
        if not self.cancel_record.get("bucket"):
            return
        from asgiref.sync import sync_to_async

        try:
            await sync_to_async(write_cancel)(self.cancel_record)
        except Exception:
            log.warning("could not record the cancel of %s", self.pod_name, exc_info=True)


async def finish_despite_cancels(work: Awaitable[None], *, budget: float) -> None:
    """Await ``work`` to its end even if the caller is cancelled meanwhile, then pass the cancel on.

    A kill's cleanup must not be cut short by the next cancel of the same kill (the triggerer repeats its
    cancel until the trigger ends). ``work`` is given up (cancelled) only after ``budget`` seconds.

    :param work: the cleanup (a coroutine or future).
    :param budget: seconds to wait for it at most.
    """
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    cancelled = False
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning("kill cleanup still running after %.0fs: given up", budget)
            task.cancel()
            break
        try:
            await asyncio.wait({task}, timeout=remaining)  # unlike wait_for, a cancel here spares the task
        except asyncio.CancelledError:
            cancelled = True
    if task.done() and not task.cancelled() and task.exception() is not None:
        log.warning("kill cleanup failed", exc_info=task.exception())
    if cancelled:
        raise asyncio.CancelledError


def write_cancel(target: dict[str, Any]) -> None:
    """Write one ``cancelled`` attempt record (synchronous: GCS's client has no async API).

    :param target: a trigger's ``cancel_record`` (see :class:`ScriptPodTrigger`).
    """
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from script_runner.ledger import Ledger

    client = GCSHook(gcp_conn_id=target.get("gcp_conn_id") or "google_cloud_default").get_conn()
    ledger = Ledger(client, bucket=target["bucket"], root=target["root"])
    ledger.append(target["run_id"], target["path"], cancel_record(target.get("record") or {}))


def cancel_record(base: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """The ledger record of an attempt a user stopped while it was deferred.

    :param base: the attempt's fixed fields as the operator left them (``started`` in ISO form).
    :param now: the time of the cancel (default: now).
    """
    ended = now or datetime.now(UTC)
    secs = 0.0
    with contextlib.suppress(KeyError, ValueError, TypeError):
        secs = round((ended - datetime.fromisoformat(str(base["started"]))).total_seconds(), 2)
    return {
        **base,
        "status": "cancelled",
        "exit_code": None,
        "reason": CANCEL_REASON,
        "action": "cancel",
        "ended": ended.isoformat(timespec="seconds"),
        "secs": max(secs, 0.0),
    }
