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
