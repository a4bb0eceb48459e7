from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger

from script_runner.config.compat import TaskDeferred, airflow_version
from script_runner.config.settings_loader import load_settings
from script_runner.run.ledger import Ledger
from script_runner.run.operator import ScriptPodOperator
from script_runner.run.trigger import ScriptPodTrigger, finish_despite_cancels
from tests.unit.script_runner.run.test_operator import SCRIPT, FakeTI

# The triggerer calls a trigger's on_kill from Airflow 3.3 (and providers that have it) on.
needs_on_kill = pytest.mark.skipif(
    not hasattr(KubernetesPodTrigger, "on_kill"),
    reason="no on_kill on this Airflow's triggers (the triggerer calls it from 3.3 on)",
)
ANON = json.dumps(
    {"conn_type": "google_cloud_platform", "extra": {"project": "test-project", "is_anonymous": True}}
)


class FakeAsyncHook:
    """Stands in for the triggerer's Kubernetes hook (no API server in unit tests): records deletions."""

    def __init__(self, on_delete: Any = None) -> None:
        self.deleted: list[str] = []
        self.on_delete = on_delete

    phase = "Running"  # what get_pod answers

    async def get_pod(self, *, name: str, namespace: str) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(status=SimpleNamespace(phase=self.phase))

    async def delete_pod(self, *, name: str, namespace: str, grace_period_seconds: int | None = None) -> None:
        self.deleted.append(name)
        if self.on_delete is not None:
            self.on_delete()


def _kpo_trigger() -> KubernetesPodTrigger:
    return KubernetesPodTrigger(
        pod_name="sr-etl-load-abc-123",
        pod_namespace="composer-user-workloads",
        trigger_start_time=datetime.now(UTC),
        base_container_name="base",
    )


def _deferred_trigger(op: ScriptPodOperator) -> ScriptPodTrigger:
    """What the triggerer runs after the operator deferred: rebuilt from the serialized form."""
    with pytest.raises(TaskDeferred) as deferred:
        op.defer(trigger=_kpo_trigger(), method_name="trigger_reentry")
    classpath, kwargs = deferred.value.trigger.serialize()
    module, _, name = classpath.rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**kwargs)
    assert isinstance(trigger, ScriptPodTrigger)
    return trigger


def _task_in_state(
    monkeypatch: pytest.MonkeyPatch, trigger: ScriptPodTrigger, state: str | None
) -> list[Any]:
    """Bind the trigger to run r1's task and answer its state as the Task SDK (3.x) or the metadata
    database (2.x) would (neither runs in unit tests); the keys asked for, as a list."""
    from types import SimpleNamespace

    from script_runner.config import compat

    trigger.task_instance = SimpleNamespace(dag_id="d", run_id="r1", task_id="run_scripts", map_index=0)
    asked: list[Any] = []
    monkeypatch.setattr(compat, "task_instance_state", lambda **key: asked.append(key) or state)
    return asked


@dataclass
class ArmedTrigger:
    """A ScriptPodTrigger for run r1's a.sh that records a cancel under sr/ of a fresh bucket."""

    trigger: ScriptPodTrigger
    hook: FakeAsyncHook
    ledger: Ledger

    def statuses(self) -> list[str]:
        """The statuses the trigger recorded for a.sh, oldest first."""
        return [r["status"] for r in self.ledger.read("r1", "a.sh")]


@pytest.fixture
def armed_trigger(
    gcs_client: Any, make_bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., ArmedTrigger]:
    """Factory of ArmedTrigger: a fresh bucket each, the hook given (default: a FakeAsyncHook)."""
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", ANON)

    def make(hook: FakeAsyncHook | None = None) -> ArmedTrigger:
        bucket = make_bucket({})
        target = {
            "bucket": bucket.name,
            "root": "sr",
            "run_id": "r1",
            "path": "a.sh",
            "record": {"try_number": 1},
        }
        trigger = ScriptPodTrigger(cancel_record=target, **_kpo_trigger().serialize()[1])
        hook = hook or FakeAsyncHook()
        trigger.__dict__["hook"] = hook
        return ArmedTrigger(trigger, hook, Ledger(gcs_client, bucket=bucket.name, root="sr"))

    return make


@needs_on_kill
def test_trigger_records_a_kill_while_deferred_as_cancelled(
    gcs_client: Any, make_bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", ANON)
    bucket = make_bucket({})
    settings = load_settings(
        environ={
            "GCS_BUCKET": bucket.name,
            "SCRIPT_RUNNER_PRESET": "local",
            "SCRIPT_RUNNER_DEFERRABLE": "true",
        }
    )
    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=settings)
    op.name = "sr-etl-load-abc-123"
    op._context = {"run_id": "r1", "ti": FakeTI(try_number=2, max_tries=4)}
    trigger = _deferred_trigger(op)
    ledger = Ledger(gcs_client, bucket=bucket.name, root=settings.state_root)
    at_delete: list[int] = []
    # recorded before the pod goes: a triggerer shutting down right after the kill loses nothing
    hook = FakeAsyncHook(lambda: at_delete.append(len(ledger.read("r1", SCRIPT["path"]))))
    trigger.__dict__["hook"] = hook
    _task_in_state(monkeypatch, trigger, "failed")  # the user marked it failed
    asyncio.run(trigger.on_kill())  # what the Airflow 3.3 triggerer calls when a user marks the task failed
    assert hook.deleted == ["sr-etl-load-abc-123"]  # KPO's part: the pod goes
    assert at_delete == [1]
    records = ledger.read("r1", SCRIPT["path"])
    assert [(r["status"], r["action"], r["try_number"], r["max_tries"]) for r in records] == [
        ("cancelled", "cancel", 2, 4)
    ]
    assert records[0]["pod"] == "sr-etl-load-abc-123"
    assert "deferred" in records[0]["reason"]


@needs_on_kill
def test_trigger_records_nothing_once_it_fired_or_without_a_state_bucket(
    armed_trigger: Callable[..., ArmedTrigger],
) -> None:
    fired = armed_trigger()
    fired.trigger._fired_event = True  # the pod ended and the task resumed: a later kill is not a cancel
    asyncio.run(fired.trigger.on_kill())
    assert fired.statuses() == []
    bare = ScriptPodTrigger(cancel_record={}, **_kpo_trigger().serialize()[1])
    bare.__dict__["hook"] = FakeAsyncHook()
    asyncio.run(bare.on_kill())  # no bucket: nothing to write, nothing raised


class SlowAsyncHook(FakeAsyncHook):
    """A delete that takes a while, as a real API call under load does."""

    async def delete_pod(self, *, name: str, namespace: str, grace_period_seconds: int | None = None) -> None:
        await asyncio.sleep(0.3)
        await super().delete_pod(name=name, namespace=namespace, grace_period_seconds=grace_period_seconds)


@needs_on_kill
def test_trigger_kill_deletes_the_pod_and_records_although_the_triggerer_cancels_it_again(
    armed_trigger: Callable[..., ArmedTrigger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 3.3's triggerer sends a killed trigger's cancel again at every sync (about once a second)
    until the trigger is done; each lands inside on_kill. Seen in the lifecycle e2e with podman pods: the
    ledger write finished, the next cancel cut the delete, and the pod ran on (an orphan)."""
    armed = armed_trigger(SlowAsyncHook())
    _task_in_state(monkeypatch, armed.trigger, "failed")

    async def triggerer() -> None:
        kill = asyncio.create_task(armed.trigger.on_kill())
        for _ in range(20):  # the supervisor's to_cancel set, sent again while the trigger runs
            await asyncio.sleep(0.05)
            kill.cancel("__airflow_user_action__")
        with pytest.raises(asyncio.CancelledError):
            await kill  # the cancel is passed on once the work is done

    asyncio.run(triggerer())
    assert armed.hook.deleted == ["sr-etl-load-abc-123"]
    assert armed.statuses() == ["cancelled"]


@pytest.mark.parametrize(
    ("state", "deleted"),
    [
        pytest.param("deferred", False, id="moved-to-another-triggerer-keeps"),
        pytest.param("failed", True, id="marked-failed-deletes"),
        pytest.param("success", True, id="marked-success-deletes"),
        pytest.param(None, True, id="cleared-deletes"),
        pytest.param("restarting", True, id="cleared-while-running-deletes"),
    ],
)
def test_trigger_on_kill_deletes_the_pod_only_when_a_user_stopped_the_task(
    armed_trigger: Callable[..., ArmedTrigger],
    monkeypatch: pytest.MonkeyPatch,
    state: str | None,
    deleted: bool,
) -> None:
    """apache/airflow#73454: Airflow 3.3's triggerer calls on_kill also when a trigger moved to another
    triggerer after missed heartbeats; its task is still deferred then, and its pod must run on."""
    armed = armed_trigger()
    asked = _task_in_state(monkeypatch, armed.trigger, state)
    asyncio.run(armed.trigger.on_kill())
    assert armed.hook.deleted == (["sr-etl-load-abc-123"] if deleted else [])
    assert armed.statuses() == (["cancelled"] if deleted else [])
    assert asked == [{"dag_id": "d", "run_id": "r1", "task_id": "run_scripts", "map_index": 0}]


def test_trigger_on_kill_keeps_the_pod_when_the_tasks_state_cannot_be_read(
    armed_trigger: Callable[..., ArmedTrigger], monkeypatch: pytest.MonkeyPatch
) -> None:
    from script_runner.config import compat

    armed = armed_trigger()
    _task_in_state(monkeypatch, armed.trigger, "failed")

    def unreadable(**key: Any) -> Any:
        raise ConnectionError("supervisor gone")

    monkeypatch.setattr(compat, "task_instance_state", unreadable)
    asyncio.run(armed.trigger.on_kill())
    assert armed.hook.deleted == []
    assert armed.statuses() == []


def test_finish_despite_cancels_gives_up_after_its_budget() -> None:
    ended: list[str] = []

    async def hangs() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            ended.append("cancelled")

    started = asyncio.run(_timed(finish_despite_cancels(hangs(), budget=0.2)))
    assert started < 5
    assert ended == ["cancelled"]


async def _timed(work: Any) -> float:
    loop = asyncio.get_running_loop()
    begin = loop.time()
    await work
    return loop.time() - begin


# Providers before 10.2x (Composer's 10.11 and 10.14) have no safe_to_cancel and delete nothing on a kill;
# below Airflow 3.3 the triggerer calls only cleanup(): ScriptPodTrigger does what 10.2x does.
needs_old_provider = pytest.mark.skipif(
    hasattr(KubernetesPodTrigger, "safe_to_cancel") or airflow_version() >= (3, 3),
    reason="this provider decides with its own safe_to_cancel (10.2x), or Airflow 3.3+ calls on_kill",
)


@needs_old_provider
@pytest.mark.parametrize(
    ("state", "fired", "deleted"),
    [
        pytest.param("failed", False, True, id="marked-failed-deletes"),
        pytest.param("success", False, True, id="marked-success-deletes"),
        pytest.param("deferred", False, False, id="triggerer-restart-keeps"),
        pytest.param("failed", True, False, id="after-its-event-keeps"),
        pytest.param("up_for_retry", False, False, id="pod-already-ended-keeps"),
    ],
)
def test_trigger_cleanup_on_old_providers_deletes_the_pod_of_a_killed_task_only(
    armed_trigger: Callable[..., ArmedTrigger],
    monkeypatch: pytest.MonkeyPatch,
    state: str,
    fired: bool,
    deleted: bool,
) -> None:
    from types import SimpleNamespace

    from script_runner.config import compat

    armed = armed_trigger()
    trigger, hook = armed.trigger, armed.hook
    if state == "up_for_retry":  # a stale trigger copy cancelled after its pod ended (Airflow 3.1's race)
        hook.phase = "Failed"
    trigger.task_instance = SimpleNamespace(dag_id="d", run_id="r1", task_id="run_scripts", map_index=0)
    asked: list[dict[str, Any]] = []
    # the task's state as the metadata database (2.x) or the Task SDK (3.1/3.2) answers it
    monkeypatch.setattr(compat, "task_instance_state", lambda **key: asked.append(key) or state)
    trigger._script_fired = fired
    asyncio.run(trigger.cleanup())
    assert hook.deleted == (["sr-etl-load-abc-123"] if deleted else [])
    assert armed.statuses() == (["cancelled"] if deleted else [])
    if not fired:
        assert asked == [{"dag_id": "d", "run_id": "r1", "task_id": "run_scripts", "map_index": 0}]
