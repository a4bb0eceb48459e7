"""The upload watcher's trigger: a Pub/Sub pull through the google provider's hook, with a settle window.

The provider's ``PubsubPullTrigger`` fires once per pull, so a burst of uploads that spans two pulls would
start two runs. This trigger keeps pulling until no new notification arrived for ``settle`` seconds (or the
first one is ``max_wait`` old), keeps the uploads the selection rules pick, and fires once with their paths
(``{"only": [...]}``). On Airflow 3 it is an ``AssetWatcher``'s trigger (an event-driven trigger that runs in
the triggerer for as long as the DAG is deployed); on Airflow 2.11 the upload watcher DAG defers to it.

Both things that belong to an event loop are made in the running one. The settings are read through
``asgiref``'s ``sync_to_async``, not ``asyncio.to_thread``: on the triggerer a Variable read is a request to
its supervisor, which a plain worker thread sends from a second event loop, against the triggerer's
``asyncio.Lock`` bound to the first (Airflow 3.1.8: ``RuntimeError: ... is bound to a different event
loop`` and a dead trigger runner, apache/airflow#64620); from ``sync_to_async``'s thread the request runs
on the triggerer's own loop. The Pub/Sub hook (its gRPC client) is made per event loop (:attr:`hook`), so
the trigger can run again in another loop.

The class is an event trigger of its own (not a subclass of the provider's): the DAG file builds one at
every parse, task processes included, and the provider's trigger module imports the Pub/Sub client and
gRPC (about 90 modules, 0.1 s of CPU a parse). The hook and the message types are imported when the
trigger runs, in the triggerer only.

Messages are acknowledged just before the event is handed to the triggerer (on Airflow 2 the triggerer
cancels a task's trigger at its first event, so nothing after it would run); a triggerer killed in
between loses that burst's run, and the next scheduled run picks the scripts up. When the settings cannot
be read the messages are not acknowledged: Pub/Sub delivers them again after the subscription's ack
deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async

try:  # Airflow 3
    from airflow.triggers.base import TriggerEvent
except ImportError:  # pragma: no cover - moved in later releases
    from airflow.sdk.triggers import TriggerEvent  # type: ignore[no-redef,import-not-found]
try:  # Airflow 3: a trigger an AssetWatcher may run
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2: the watcher DAG's task defers to it
    from airflow.triggers.base import BaseTrigger as BaseEventTrigger  # type: ignore[assignment]

from script_runner.config import constants as c
from script_runner.config.settings_loader import load_settings_from_airflow
from script_runner.discover.selection import parse_runnerignore
from script_runner.discover.sources import make_source
from script_runner.upload.rules import UPLOADED_KEY, select_uploads, uploads_from_messages

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from airflow.providers.google.cloud.hooks.pubsub import PubSubAsyncHook

    from script_runner.config.settings import RunnerSettings

log = logging.getLogger(__name__)


class UploadTrigger(BaseEventTrigger):
    """Fires once per settled burst of uploads, with the paths of the scripts among them.

    :param project_id: the subscription's project.
    :param subscription: the subscription's name (not its path).
    :param settle: seconds without a new notification that end a burst.
    :param max_wait: the longest a burst is collected, from its first notification.
    :param poke_interval: seconds between pulls while nothing arrives.
    :param gcp_conn_id: the Google Cloud connection.
    :param max_messages: messages per pull.
    :param impersonation_chain: service account(s) to impersonate, as in the provider's trigger.
    """

    def __init__(
        self,
        *,
        project_id: str,
        subscription: str,
        settle: float,
        max_wait: float = 60.0,
        poke_interval: float = 1.0,
        gcp_conn_id: str = "google_cloud_default",
        max_messages: int = 1000,
        impersonation_chain: str | Sequence[str] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call,unused-ignore]
        self.project_id = project_id
        self.subscription = subscription
        self.max_messages = max_messages
        self.gcp_conn_id = gcp_conn_id
        self.poke_interval = poke_interval
        self.impersonation_chain = impersonation_chain
        self.settle = settle
        self.max_wait = max_wait
        self._loop_hook: tuple[asyncio.AbstractEventLoop, PubSubAsyncHook] | None = None

    @property
    def hook(self) -> PubSubAsyncHook:
        """The Pub/Sub hook of the running event loop (the provider caches one for the trigger's life; its
        async client is bound to the loop that first used it). Only inside a running loop."""
        from airflow.providers.google.cloud.hooks.pubsub import PubSubAsyncHook

        loop = asyncio.get_running_loop()
        if self._loop_hook is None or self._loop_hook[0] is not loop:
            hook = PubSubAsyncHook(
                gcp_conn_id=self.gcp_conn_id,
                impersonation_chain=self.impersonation_chain,
                project_id=self.project_id,
            )
            self._loop_hook = (loop, hook)
        return self._loop_hook[1]

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and arguments (what the triggerer rebuilds the trigger from)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "project_id": self.project_id,
                "subscription": self.subscription,
                "settle": self.settle,
                "max_wait": self.max_wait,
                "poke_interval": self.poke_interval,
                "gcp_conn_id": self.gcp_conn_id,
                "max_messages": self.max_messages,
                "impersonation_chain": self.impersonation_chain,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Pull, let the burst settle, select; fire when a script is among the uploads; repeat."""
        # The GCS hook is imported once, here, rather than first in the worker thread below: a first import
        # there holds Python's import lock while other triggers on the loop may need it (the loop was seen
        # stalled for 39 s, on a loaded machine, while the first burst was resolved).
        from airflow.providers.google.cloud.hooks.gcs import GCSHook  # noqa: F401

        # Read the settings once at start, result unused: the triggerer serves a trigger's first Variable
        # or Connection read by starting its in-process execution API, which took 58 s on a loaded
        # machine; paid here, it is not paid by the first upload.
        warm_up = asyncio.ensure_future(_read_selection_async())
        warm_up.add_done_callback(_log_warm_up)

        while True:
            # The settings and .runnerignore are read (in a thread: Airflow's API, GCS) while the burst
            # settles, from its first notification on: the read overlaps the settle window.
            pulled, selection = await self._settled_batch(
                lambda: asyncio.ensure_future(_read_selection_async())
            )
            started = time.monotonic()
            try:
                rules = await selection
            except Exception:
                log.exception("[runner] upload: cannot read the settings; the notifications come back later")
                continue
            uploads = uploads_from_messages(self._as_dicts(pulled))
            paths, ignored = select_uploads(uploads, rules[0], rules[1]) if rules else ([], {})
            if rules is None:
                ignored = {f"gs://{u.bucket}/{u.name}": "on_upload is off in the settings" for u in uploads}
            for uri, why in sorted(ignored.items()):
                log.info("[runner] upload ignored %s: %s", uri, why)
            await self._acknowledge(pulled)
            if paths:
                log.info(
                    "[runner] upload run for %d script(s) (settings read %.1fs after the burst settled): %s",
                    len(paths),
                    time.monotonic() - started,
                    " ".join(paths),
                )
                payload = {UPLOADED_KEY: paths, "uploads": len(uploads), "ignored": len(ignored)}
                yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def _acknowledge(self, pulled: list[Any]) -> None:
        """Acknowledge ``pulled`` (none: nothing to do)."""
        if pulled:
            await self.hook.acknowledge(
                project_id=self.project_id, subscription=self.subscription, messages=pulled
            )

    async def _settled_batch(
        self, on_first: Callable[[], asyncio.Future[Any]]
    ) -> tuple[list[Any], asyncio.Future[Any]]:
        """Messages of one burst: pulled until ``settle`` seconds pass with nothing new (or ``max_wait``),
        and what ``on_first`` started when the first of them arrived."""
        batch: list[Any] = []
        started: asyncio.Future[Any] | None = None
        first = last = 0.0
        while True:
            # Pulls return at once (the settle window needs a bounded pull); a real subscription may
            # answer an empty pull although messages wait, which only delays them to the next pull.
            pulled = await self.hook.pull(
                project_id=self.project_id,
                subscription=self.subscription,
                max_messages=self.max_messages,
                return_immediately=True,
            )
            now = time.monotonic()
            if pulled:
                batch.extend(pulled)
                first = first or now
                last = now
                started = started or on_first()
            if started is not None and (now - last >= self.settle or now - first >= self.max_wait):
                return batch, started
            await asyncio.sleep(min(self.poke_interval, self.settle) if batch else self.poke_interval)

    @staticmethod
    def _as_dicts(pulled: list[Any]) -> list[dict[str, Any]]:
        from google.cloud.pubsub_v1.types import ReceivedMessage

        return [ReceivedMessage.to_dict(m) for m in pulled]


async def _read_selection_async() -> tuple[RunnerSettings, list[str]] | None:
    """:func:`read_selection` off the event loop, its Airflow requests back on it (see the module doc)."""
    return await sync_to_async(read_selection, thread_sensitive=False)()


def _log_warm_up(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("[runner] upload watcher: the settings cannot be read yet: %s", done.exception())


def read_selection() -> tuple[RunnerSettings, list[str]] | None:
    """The current settings and the source's ``.runnerignore`` globs (read now, as discovery does), or None
    while the settings' ``on_upload`` is off."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    settings = load_settings_from_airflow()
    if not settings.on_upload:
        return None
    client = GCSHook(gcp_conn_id=settings.gcp_conn_id).get_conn() if settings.source_scheme == "gs" else None
    return settings, parse_runnerignore(make_source(settings, client).read_file(c.RUNNERIGNORE))
