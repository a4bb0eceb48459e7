"""The deferrable pod trigger: KPO's own, plus a ledger record when a user stops the task while it waits.

In deferrable mode no task process runs while the pod does: a user's "mark failed" (or "success") reaches
the triggerer, not the operator's ``on_kill``. KPO's trigger deletes the pod then; this subclass also writes
the attempt to the ledger as ``cancelled``, so the report says what happened instead of a bare "failed".
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable

log = logging.getLogger(__name__)

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
        """Whether KPO's trigger deletes the pod on a kill (not after its event fired, not ``keep_pod``).

        Providers before 10.2x have neither ``on_kill_action`` (the pod is KPO's default, ``delete_pod``)
        nor ``_fired_event`` (kept by :meth:`run` here).
        """
        action = getattr(self, "on_kill_action", "delete_pod")
        fired = getattr(self, "_fired_event", False) or getattr(self, "_script_fired", False)
        return not fired and getattr(action, "value", action) == "delete_pod"

    async def run(self) -> AsyncIterator[Any]:
        """KPO's events, noting that one fired (a cleanup after an event is no kill)."""
        async for event in super().run():
            self._script_fired = True
            yield event

    async def on_kill(self) -> None:
        """A user stopped the task (Airflow 3.3+): the attempt is recorded, then the pod is deleted.

        Airflow 3.3's triggerer calls ``on_kill`` for every trigger its supervisor no longer assigns it,
        not only a user's kill: after missed heartbeats the trigger moves to another triggerer and the
        first one, still alive, kills its copy (apache/airflow#73454), and KPO's ``on_kill`` would delete
        the running pod the other triggerer now watches. The two differ in the task's state: a user's mark
        failed, mark success or clear has moved it out of ``deferred``; a move leaves it deferred. So the
        pod is deleted (and the cancel recorded) only when the task is no longer deferred (a cleared one has
        no state), as KPO's own cleanup decides before 3.3; a state that cannot be read keeps the pod (KPO's
        choice there too).

        Recorded first: a triggerer shutting down right after the kill cancels whatever is still awaited,
        and a deleted pod with no record reads as a bare "failed" in the report. KPO's trigger deletes the
        pod in its own ``on_kill`` from 10.2x on; with an older provider (Composer 3.3.1 carries 10.14) this
        deletes it. Both run to their end even
        when this call is cancelled meanwhile: the triggerer sends its cancel again at every sync with its
        supervisor (about once a second) until the trigger is done, and each cancel lands inside on_kill;
        the record (a GCS write) and the delete then never happened, leaving the pod running.
        """
        if not self._deletes_on_kill():
            if "on_kill" in vars(KubernetesPodTrigger):
                await super().on_kill()
            return
        await finish_despite_cancels(self._kill_if_stopped(), budget=KILL_BUDGET_SECS)

    async def _kill_if_stopped(self) -> None:
        try:
            deferred = await self._task_state() == "deferred"
        except Exception:
            log.warning("could not tell whether %s was killed; pod kept", self.pod_name, exc_info=True)
            return
        if deferred:
            log.warning(
                "trigger of pod %s cancelled while its task is still deferred (moved to another triggerer): "
                "pod kept, the other triggerer watches it",
                self.pod_name,
            )
            return
        await self._record_then_delete()

    async def _record_then_delete(self) -> None:
        await self.record_cancel()
        if "on_kill" not in vars(KubernetesPodTrigger):
            await self._delete_pod()
        else:
            await super().on_kill()

    async def cleanup(self) -> None:
        """Before Airflow 3.3 a user's kill reaches only ``cleanup``: record it where KPO deletes the pod.

        Providers from 10.2x on decide with ``safe_to_cancel`` and delete the pod in their own cleanup.
        Older ones (Composer's 10.11 and 10.14) delete nothing: a deferred task marked failed would leave
        its pod running to its end. For them this does what 10.2x does: the task is no longer deferred (a
        user's kill, not a triggerer restart), so record the cancel and delete the pod.
        """
        from script_runner.config.compat import airflow_version

        # Airflow's own version: an old provider's version_compat may not know 3.3
        if airflow_version() < (3, 3) and self._deletes_on_kill():
            # Shielded: Airflow 2's triggerer cancels a removed trigger again on every loop (about once a
            # second), which would stop a slow ledger write or delete half-way; the shielded task finishes.
            await asyncio.shield(asyncio.ensure_future(self._after_kill()))
        await super().cleanup()

    async def _after_kill(self) -> None:
        """If the task was killed (no longer deferred): record the cancel; delete the pod if KPO does not."""
        provider_deletes = hasattr(self, "safe_to_cancel")
        try:
            killed = await (self.safe_to_cancel() if provider_deletes else self._not_deferred())
        except Exception:
            log.warning("could not tell whether %s was killed; pod kept", self.pod_name, exc_info=True)
            killed = False  # KPO keeps the pod then too
        if killed and not provider_deletes and not await self._pod_runs():
            # Airflow 3.1's deferral race can cancel a stale copy of a trigger whose pod already ended:
            # no script was stopped, so nothing is recorded (a bogus "cancelled" attempt was seen in e2e).
            killed = False
        if killed:
            await self.record_cancel()
            if not provider_deletes:
                await self._delete_pod()

    async def _pod_runs(self) -> bool:
        """Whether the pod still exists and has not ended (a kill stops a running script only)."""
        try:
            pod = await self.hook.get_pod(name=self.pod_name, namespace=self.pod_namespace)
        except Exception:
            return False  # gone (404) or unreadable: nothing left to stop
        phase = getattr(getattr(pod, "status", None), "phase", None)
        return phase not in ("Succeeded", "Failed")

    async def _not_deferred(self) -> bool:
        """Whether the task left ``deferred`` (killed by a user), for providers without ``safe_to_cancel``."""
        state = await self._task_state()
        return state is not None and state != "deferred"

    async def _task_state(self) -> str | None:
        """The task's current state (None: none, e.g. cleared, or unknown); "deferred" if no task is bound
        (nothing tells it was stopped)."""
        from asgiref.sync import sync_to_async

        from script_runner.config.compat import task_instance_state

        ti = self.task_instance
        if ti is None:
            return "deferred"
        state = await sync_to_async(task_instance_state)(
            dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index
        )
        return None if state is None else str(getattr(state, "value", state))

    async def _delete_pod(self) -> None:
        """Delete the pod as KPO's 10.2x trigger does on a kill; a failure is logged, never raised."""
        log.info(
            "Deleting pod %s in namespace %s (task killed while deferred).", self.pod_name, self.pod_namespace
        )
        try:
            await self.hook.delete_pod(name=self.pod_name, namespace=self.pod_namespace)
        except Exception:
            log.exception("could not delete pod %s", self.pod_name)

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
    from script_runner.run.attempts import deferred_cancel_record
    from script_runner.run.ledger import ledger_for_connection

    conn_id = target.get("gcp_conn_id") or "google_cloud_default"
    ledger = ledger_for_connection(conn_id, bucket=target["bucket"], root=target["root"])
    record = deferred_cancel_record(target.get("record") or {}, timeout=target.get("timeout"))
    ledger.append(target["run_id"], target["path"], record)
