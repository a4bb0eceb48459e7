"""The upload trigger against real parts: the Pub/Sub emulator, and fake-gcs-server publishing its uploads.

One emulator per module (Java starts in a few seconds); each test drains the subscription first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from local import pubsub
from script_runner.upload.trigger import UploadTrigger
from tests.conftest import EMULATOR_BIN, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not pubsub.installed(),
        reason="no Pub/Sub emulator here (gcloud, its pubsub-emulator component, Java)",
    ),
]
BUCKET = "composer-bucket"
SETTLE = 2.0


def _wait(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The emulator with the topic and subscription, and fake-gcs-server publishing uploads under data/."""
    ps_port, gcs_port = free_port(), free_port()
    ps = subprocess.Popen(
        pubsub.command(ps_port, tmp_path_factory.mktemp("pubsub")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    gcs = None
    saved = dict(os.environ)
    try:
        _wait("Pub/Sub emulator", lambda: pubsub.ready(ps_port), 90)
        pubsub.create_topic_and_subscription(ps_port)
        os.environ["PUBSUB_EMULATOR_HOST"] = pubsub.host(ps_port)
        gcs = subprocess.Popen(
            [
                str(EMULATOR_BIN),
                *("-scheme", "http", "-host", "127.0.0.1", "-port", str(gcs_port)),
                *("-backend", "memory", "-log-level", "error", *pubsub.gcs_event_flags(BUCKET)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{gcs_port}"
        from local.processes import http_ok

        _wait("fake-gcs-server", lambda: http_ok(f"{url}/storage/v1/b"), 15)
        os.environ["STORAGE_EMULATOR_HOST"] = url
        os.environ["AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"] = json.dumps(
            {"conn_type": "google_cloud_platform", "extra": {"project": "test-project", "is_anonymous": True}}
        )
        from google.cloud import storage

        client = storage.Client(project="test-project")
        yield {"bucket": client.create_bucket(BUCKET), "port": ps_port}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if gcs is not None:
            gcs.terminate()
            gcs.wait(timeout=10)
        os.killpg(ps.pid, 15)  # gcloud and the java process it started share the group
        ps.wait(timeout=20)


def _settings(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    value = {"preset": "local", "source": f"gs://{BUCKET}/data/", "on_upload": True, **extra}
    monkeypatch.setenv("AIRFLOW_VAR_SCRIPT_RUNNER_SETTINGS", json.dumps(value))


def _trigger() -> UploadTrigger:
    """Built from its serialized form, as the triggerer does."""
    made = UploadTrigger(
        project_id=pubsub.PROJECT, subscription=pubsub.SUBSCRIPTION, settle=SETTLE, poke_interval=0.2
    )
    classpath, kwargs = made.serialize()
    assert classpath == "script_runner.upload.trigger.UploadTrigger"
    return UploadTrigger(**kwargs)


def _upload(bucket: Any, names: list[str], gap: float) -> float:
    """Upload ``names`` one by one, ``gap`` seconds apart; returns when the last one was uploaded."""
    for i, name in enumerate(names):
        if i:
            time.sleep(gap)
        bucket.blob(name).upload_from_string("#!/usr/bin/env bash\necho hi\n")
    return time.monotonic()


async def _events(
    trigger: UploadTrigger, *, within: float, quiet: float
) -> list[tuple[float, dict[str, Any]]]:
    """The events the trigger fires, with when each fired: collected until ``quiet`` seconds pass after the
    last one, at most ``within`` seconds."""
    out: list[tuple[float, dict[str, Any]]] = []
    run = trigger.run()
    started = time.monotonic()

    async def collect() -> None:
        async for event in run:
            out.append((time.monotonic(), event.payload))

    collecting = asyncio.ensure_future(collect())
    try:
        while time.monotonic() - started < within:
            if out and time.monotonic() - out[-1][0] >= quiet:
                break
            await asyncio.sleep(0.2)
    finally:
        collecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collecting
        await run.aclose()
    return out


async def _drain(trigger: UploadTrigger, *, until: str | None = None, within: float = 30) -> None:
    """Ack what is queued; with ``until``, go on until that object's notification was seen (fake-gcs-server
    publishes a moment after the upload returns: on a loaded machine it came after a first empty pull)."""
    loop = asyncio.get_running_loop()
    deadline, seen = loop.time() + within, until is None
    while True:
        pulled = await trigger.hook.pull(
            project_id=pubsub.PROJECT,
            subscription=pubsub.SUBSCRIPTION,
            max_messages=1000,
            return_immediately=True,
        )
        if pulled:
            await trigger.hook.acknowledge(
                project_id=pubsub.PROJECT, subscription=pubsub.SUBSCRIPTION, messages=pulled
            )
            seen = seen or any(m.message.attributes.get("objectId") == until for m in pulled)
            continue
        if seen or loop.time() > deadline:
            return
        await asyncio.sleep(0.2)


def test_upload_trigger_fires_once_for_a_burst_with_just_its_scripts(
    wired: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(monkeypatch)
    wired["bucket"].blob("data/.runnerignore").upload_from_string("drafts/\n")
    trigger = _trigger()

    async def scenario() -> tuple[float, list[tuple[float, dict[str, Any]]]]:
        await _drain(trigger, until="data/.runnerignore")
        names = [f"data/burst/s{i}.sh" for i in range(6)]
        names += ["data/notes.txt", "data/.hidden.sh", "data/drafts/wip.sh", "dags/not_a_script.sh"]
        # A burst longer than one pull and shorter than the settle window between two uploads.
        uploading = asyncio.create_task(asyncio.to_thread(_upload, wired["bucket"], names, 0.25))
        events = await _events(trigger, within=60, quiet=SETTLE + 4)
        return await uploading, events

    last_upload, events = asyncio.run(scenario())
    assert [payload for _, payload in events] == [
        {"uploaded": [f"burst/s{i}.sh" for i in range(6)], "uploads": 9, "ignored": 3}
    ]
    # One event, after the burst settled, within a few seconds of the last upload. The upload thread's
    # clock reads the end of its last call, which a loaded machine reports late (seen 0.1 s): 1 s of slack.
    assert SETTLE - 1 <= events[0][0] - last_upload < SETTLE + 8


def test_upload_trigger_fires_again_for_uploads_apart_by_more_than_the_settle_window(
    wired: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(monkeypatch)
    trigger = _trigger()

    async def scenario() -> list[tuple[float, dict[str, Any]]]:
        await _drain(trigger)
        uploading = asyncio.create_task(
            asyncio.to_thread(_upload, wired["bucket"], ["data/one.sh", "data/two.sh"], SETTLE + 2)
        )
        events = await _events(trigger, within=60, quiet=SETTLE + 8)
        await uploading
        return events

    assert [payload["uploaded"] for _, payload in asyncio.run(scenario())] == [["one.sh"], ["two.sh"]]


def test_upload_trigger_drops_uploads_while_on_upload_is_off(
    wired: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(monkeypatch, on_upload=False)
    trigger = _trigger()

    async def scenario() -> tuple[list[Any], list[Any]]:
        await _drain(trigger)
        await asyncio.to_thread(_upload, wired["bucket"], ["data/off.sh"], 0)
        events = await _events(trigger, within=SETTLE + 4, quiet=SETTLE + 4)
        left = await trigger.hook.pull(
            project_id=pubsub.PROJECT,
            subscription=pubsub.SUBSCRIPTION,
            max_messages=10,
            return_immediately=True,
        )
        return events, left

    events, left = asyncio.run(scenario())
    assert events == []
    assert left == []  # acknowledged, not left to come back


def test_local_pubsub_topic_and_subscription_creation_is_idempotent(wired: dict[str, Any]) -> None:
    pubsub.create_topic_and_subscription(wired["port"])  # a reused stack creates them again: no error
    base = f"http://{pubsub.host(wired['port'])}/v1/projects/{pubsub.PROJECT}"
    with urllib.request.urlopen(f"{base}/subscriptions/{pubsub.SUBSCRIPTION}", timeout=10) as resp:
        sub = json.loads(resp.read())
    assert sub["topic"] == f"projects/{pubsub.PROJECT}/topics/{pubsub.TOPIC}"
    assert sub["ackDeadlineSeconds"] == pubsub.ACK_DEADLINE_SECONDS


def test_upload_trigger_runs_again_in_another_event_loop(
    wired: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same trigger object run in two event loops (a triggerer that restarts its loop, or a test's two
    # asyncio.run): the Pub/Sub client of the first loop must not be reused by the second.
    _settings(monkeypatch)
    trigger = _trigger()

    async def once(name: str) -> list[tuple[float, dict[str, Any]]]:
        await _drain(trigger)
        await asyncio.to_thread(_upload, wired["bucket"], [name], 0)
        return await _events(trigger, within=SETTLE + 20, quiet=SETTLE + 2)

    first = asyncio.run(once("data/loop-one.sh"))
    second = asyncio.run(once("data/loop-two.sh"))
    assert [payload["uploaded"] for _, payload in first] == [["loop-one.sh"]]
    assert [payload["uploaded"] for _, payload in second] == [["loop-two.sh"]]


class _TriggererComms31:
    """Airflow 3.1.8's triggerer channel to its supervisor, reduced to what broke (apache/airflow#64620,
    fixed by #66412): one ``asyncio.Lock`` serialises the requests; the triggerer's loop takes it for its
    own heartbeats, and a trigger's sync SDK call (a Variable read) sends through ``async_to_sync`` from the
    calling thread. From a plain worker thread (``asyncio.to_thread``) that runs in a second event loop and
    meets the lock bound to the first: ``RuntimeError: <asyncio.locks.Lock ...> is bound to a different
    event loop`` (or a waiter woken from the wrong thread: the read hangs, as the deferred scripts did).
    From ``sync_to_async``'s thread the request goes back to the triggerer's own loop. Bounded here (5 s) so
    that the old behaviour fails the test instead of hanging it."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.sent = 0

    async def asend(self) -> None:
        async with self.lock:
            await asyncio.sleep(0.05)
            self.sent += 1

    def send(self) -> None:
        from asgiref.sync import async_to_sync

        async def bounded() -> None:
            await asyncio.wait_for(self.asend(), 5)

        async_to_sync(bounded)()

    async def heartbeats(self) -> None:
        while True:
            await self.asend()
            await asyncio.sleep(0)


def test_upload_trigger_reads_the_settings_through_the_triggerers_own_loop(
    wired: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from script_runner.upload import trigger as trigger_module

    _settings(monkeypatch)
    comms = _TriggererComms31()
    real = trigger_module.read_selection

    def read_selection() -> Any:
        comms.send()  # the Variable read's request to the supervisor, as on Airflow 3.1.8's triggerer
        return real()

    monkeypatch.setattr(trigger_module, "read_selection", read_selection)
    trigger = _trigger()

    async def scenario() -> tuple[list[tuple[float, dict[str, Any]]], BaseException | None]:
        beating = asyncio.ensure_future(comms.heartbeats())
        await _drain(trigger)
        await asyncio.to_thread(_upload, wired["bucket"], ["data/comms.sh"], 0)
        events = await _events(trigger, within=SETTLE + 20, quiet=SETTLE + 2)
        died = beating.exception() if beating.done() else None  # the triggerer's own requests
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        return events, died

    events, died = asyncio.run(scenario())
    assert died is None
    assert [payload["uploaded"] for _, payload in events] == [["comms.sh"]]
    assert comms.sent > 2
