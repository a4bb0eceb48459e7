"""The deferrable pod trigger: KPO's own, plus a ledger record when a user stops the task while it waits.

In deferrable mode no task process runs while the pod does: a user's "mark failed" (or "success") reaches
the triggerer, not the operator's ``on_kill``. KPO's trigger deletes the pod then; this subclass also writes
the attempt to the ledger as ``cancelled``, so the report says what happened instead of a bare "failed".
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger

log = logging.getLogger(__name__)

# What the trigger records; report.py words it after the task's final state (marked failed or success).
CANCEL_REASON = "stopped outside the task while deferred (marked failed or success); pod deleted"


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
        and a deleted pod with no record reads as a bare "failed" in the report.
        """
        if self._deletes_on_kill():
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
