"""Done-markers keyed by the run's interval, written and read by the Airflow side only (issue 25 items 1, 8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from script_runner.config.compat import AirflowException, AirflowSkipException
from script_runner.run import pod_spec
from script_runner.run.done_markers import interval_key, logical_day
from script_runner.run.gcs_write import GcsWriter
from script_runner.run.ledger import Ledger
from script_runner.run.operator import ScriptPodOperator
from tests.unit.script_runner.run.test_operator import SCRIPT, SETTINGS, FakeTI

MD5 = "XrY7u+Ae7tCTyyK7j1rNww=="  # hex 5eb63bbbe01eeed093cb22bb8f5acdc3
HOUR = timedelta(hours=1)
T13 = datetime(2026, 12, 4, 13, 0, tzinfo=UTC)


def scheduled(start: datetime, end: datetime, *, run_id: str = "r1", max_tries: int = 2) -> dict[str, Any]:
    """A scheduled run's context as Airflow 2.11 and 3.x give it (data interval, logical date)."""
    return {
        "run_id": run_id,
        "ti": FakeTI(max_tries=max_tries),
        "logical_date": start,
        "data_interval_start": start,
        "data_interval_end": end,
        "dag_run": SimpleNamespace(run_after=end, conf={}),
    }


@pytest.mark.parametrize(
    ("context", "key"),
    [
        pytest.param(scheduled(T13, T13 + HOUR), "20261204T1300Z-20261204T1400Z", id="data-interval"),
        pytest.param(scheduled(T13, T13), "20261204T1300Z", id="cron-trigger-zero-width"),
        pytest.param(
            scheduled(T13 + timedelta(seconds=7.25), T13 + timedelta(seconds=7.25)),
            "20261204T130007.250000Z",
            id="manual-run-with-a-logical-date",
        ),
        pytest.param(
            {"logical_date": None, "dag_run": SimpleNamespace(run_after=T13 + timedelta(seconds=7.25))},
            "2026-12-04",
            id="airflow3-manual-run-without-logical-date-the-day",
        ),
    ],
)
def test_interval_key_names_the_runs_interval(context: dict[str, Any], key: str) -> None:
    assert interval_key(context) == key
    assert logical_day(context) == "2026-12-04"


def test_interval_key_differs_for_each_hourly_run_of_a_day() -> None:
    keys = {interval_key(scheduled(T13 + i * HOUR, T13 + (i + 1) * HOUR)) for i in range(-13, 10)}
    assert len(keys) == 23  # the date alone (RUNNER_LOGICAL_DATE) would make them one


def test_pod_env_keys_steps_by_interval_and_keeps_the_date() -> None:
    env = pod_spec.run_env(
        dag_id="d",
        run_id="r",
        try_number=1,
        logical_date="2026-12-04",
        interval="20261204T1300Z",
        rerun=False,
    )
    assert (env["RUNNER_LOGICAL_DATE"], env["RUNNER_INTERVAL"]) == ("2026-12-04", "20261204T1300Z")


@pytest.fixture(params=["storage-client", "plain-http"])
def op(request: pytest.FixtureRequest, gcs_client: Any, make_bucket: Any) -> ScriptPodOperator:
    """An operator whose ledger and done-markers live in a bucket of the real GCS emulator, read and
    written through the storage client or over plain HTTP (a connection that needs no provider logic)."""
    bucket = make_bucket({})
    operator = ScriptPodOperator(
        task_id="run_scripts", script={**SCRIPT, "md5": MD5}, runner_settings=SETTINGS
    )
    writer = GcsWriter(None) if request.param == "plain-http" else None
    operator.__dict__["ledger"] = Ledger(gcs_client, bucket=bucket.name, root="script-runner", writer=writer)
    return operator


def _succeed(op: ScriptPodOperator, context: dict[str, Any]) -> None:
    """What the task does after its pod ended with exit 0 (cleanup, before the pod is deleted)."""
    op._context, op._cancelled = context, False
    op._mark_done()


def _objects(op: ScriptPodOperator) -> list[str]:
    assert op.ledger is not None
    return [b.name for b in op.ledger.client.list_blobs(op.ledger.bucket, prefix="script-runner/cache/done/")]


def test_done_marker_is_written_by_the_task_under_the_airflow_only_prefix(op: ScriptPodOperator) -> None:
    _succeed(op, scheduled(T13, T13 + HOUR))
    assert _objects(op) == [
        "script-runner/cache/done/etl/load.sh/5eb63bbbe01eeed093cb22bb8f5acdc3/20261204T1300Z-20261204T1400Z"
    ]


def test_done_marker_of_one_hour_does_not_skip_the_next_hour(op: ScriptPodOperator) -> None:
    _succeed(op, scheduled(T13, T13 + HOUR, run_id="scheduled__13"))
    assert (
        op._done_for_interval(scheduled(T13 + HOUR, T13 + 2 * HOUR, run_id="scheduled__14"), rerun=False)
        is False
    )


def test_done_marker_of_another_run_of_the_interval_skips_without_a_pod(op: ScriptPodOperator) -> None:
    _succeed(op, scheduled(T13, T13 + HOUR, run_id="scheduled__13"))
    again = scheduled(T13, T13 + HOUR, run_id="manual__13")
    with pytest.raises(AirflowSkipException, match="already done for interval 20261204T1300Z-20261204T1400Z"):
        op._done_for_interval(again, rerun=False)
    assert op.ledger is not None
    (record,) = op.ledger.read("manual__13", SCRIPT["path"])
    assert (record["status"], record["action"], record["exit_code"]) == ("skipped", "skip", None)
    assert "done-marker of run scheduled__13" in record["reason"]
    assert op._done_for_interval(again, rerun=True) is False  # rerun: the marker is ignored


def test_done_marker_of_this_run_ends_a_later_try_as_success_and_a_clear_skips(op: ScriptPodOperator) -> None:
    _succeed(op, scheduled(T13, T13 + HOUR, max_tries=2))
    # the task's end was lost after its pod succeeded: the next try of the same run does not run it again
    assert op._done_for_interval(scheduled(T13, T13 + HOUR, max_tries=2), rerun=False) is True
    # a user cleared the run (max_tries raised): the interval is done, the script is skipped by its marker
    with pytest.raises(AirflowSkipException, match="done-marker of run r1"):
        op._done_for_interval(scheduled(T13, T13 + HOUR, max_tries=5), rerun=False)
    assert op.ledger is not None
    assert [r["status"] for r in op.ledger.read("r1", SCRIPT["path"])] == ["success", "skipped"]


def test_done_marker_forged_where_pods_may_write_is_not_read(op: ScriptPodOperator) -> None:
    """A pod may write <root>/done/ (older grants) and state/: neither makes another script look done."""
    assert op.ledger is not None
    bucket = op.ledger.client.bucket(op.ledger.bucket)
    hexed = "5eb63bbbe01eeed093cb22bb8f5acdc3"
    for forged in (
        f"done/etl/load.sh/{hexed}/2026-12-04",
        f"done/etl/load.sh/{hexed}/20261204T1300Z-20261204T1400Z",
    ):
        bucket.blob(f"script-runner/{forged}").upload_from_string('{"run": "r1", "try": "1"}')
    assert op._done_for_interval(scheduled(T13, T13 + HOUR), rerun=False) is False  # the script runs


def test_done_marker_that_cannot_be_read_stops_the_try(op: ScriptPodOperator) -> None:
    class Unreadable:
        bucket = "b"

        def object_name(self, *args: Any) -> str:
            return "script-runner/cache/done/x"

        def read(self, name: str) -> None:
            raise ConnectionError("no answer")

    op.__dict__["done_markers"] = Unreadable()
    with pytest.raises(AirflowException, match="not running on an unknown answer"):
        op._done_for_interval(scheduled(T13, T13 + HOUR), rerun=False)


def test_done_marker_is_not_written_for_a_cancelled_attempt(op: ScriptPodOperator) -> None:
    op._context, op._cancelled = scheduled(T13, T13 + HOUR), True
    op._mark_done()
    assert _objects(op) == []


def _succeeded_pod() -> tuple[Any, Any]:
    from kubernetes.client import models as k8s

    meta = k8s.V1ObjectMeta(name="sr-etl-load", namespace="ns")
    state = k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(exit_code=0))
    status = k8s.V1PodStatus(
        phase="Succeeded",
        container_statuses=[
            k8s.V1ContainerStatus(
                name="base", state=state, image="i", image_id="", ready=False, restart_count=0
            )
        ],
    )
    return k8s.V1Pod(metadata=meta), k8s.V1Pod(metadata=meta, status=status)


def test_success_is_marked_and_recorded_before_the_pod_is_deleted_and_recorded_once(
    op: ScriptPodOperator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both writes happen in cleanup, before KPO deletes the pod: the task's work after its pod is the
    deletion alone, and a task end lost after the deletion still finds the marker and the record."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    context = scheduled(T13, T13 + HOUR)
    seen_at_deletion: list[tuple[list[str], list[str]]] = []

    def kpo_cleanup(self: ScriptPodOperator, *args: Any, **kwargs: Any) -> None:
        assert self.ledger is not None
        records = [r["status"] for r in self.ledger.read("r1", SCRIPT["path"])]
        seen_at_deletion.append((_objects(self), records))

    monkeypatch.setattr(KubernetesPodOperator, "cleanup", kpo_cleanup)
    op.__dict__["pod_manager"] = SimpleNamespace(streamed_end_line=lambda pod, name: None)
    op.__dict__["client"] = object()  # the Kubernetes client read_pod_usage would be handed
    monkeypatch.setattr("script_runner.run.operator.read_pod_usage", lambda *a, **k: {})
    op._context, op._cancelled, op._recorded, op._settled = context, False, False, False

    def pod_ran() -> None:
        op.cleanup(*_succeeded_pod())

    op._guarded(context, pod_ran, [])
    ((markers, records),) = seen_at_deletion
    assert len(markers) == 1
    assert records == ["success"]
    assert op.ledger is not None
    assert [(r["status"], r["action"]) for r in op.ledger.read("r1", SCRIPT["path"])] == [("success", "done")]


def test_a_failed_deletion_after_a_recorded_success_adds_no_failure_record(
    op: ScriptPodOperator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    def deletion_fails(self: ScriptPodOperator, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the API server went away")

    monkeypatch.setattr(KubernetesPodOperator, "cleanup", deletion_fails)
    op.__dict__["pod_manager"] = SimpleNamespace(streamed_end_line=lambda pod, name: None)
    op.__dict__["client"] = object()  # the Kubernetes client read_pod_usage would be handed
    monkeypatch.setattr("script_runner.run.operator.read_pod_usage", lambda *a, **k: {})
    context = scheduled(T13, T13 + HOUR)
    op._context, op._cancelled, op._recorded, op._settled = context, False, False, False
    with pytest.raises(ConnectionError):
        op._guarded(context, lambda: op.cleanup(*_succeeded_pod()), [])
    assert op.ledger is not None
    assert [r["status"] for r in op.ledger.read("r1", SCRIPT["path"])] == ["success"]
    assert "succeeded; the task failed after its pod" in caplog.text
    # the task's retry ends at once: this run's marker says the script succeeded
    assert op._done_for_interval(scheduled(T13, T13 + HOUR), rerun=False) is True
