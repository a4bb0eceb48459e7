"""Issue 25 items 1 and 8 on the local stack: each scheduled run is its own unit, and no pod forges success.

Item 1 with real scheduled runs: the runner DAG built with ``SCRIPT_RUNNER_SCHEDULE=@hourly``
(``tests/e2e/dags``), backfilled over three hours of one day (Airflow 3's backfill API: ``backfill`` runs,
one per interval, one at a time). An unscheduled script runs once per interval, a ``schedule=0 2 * * *``
one in the 02:00 run only; clearing one interval's run skips both by their done-markers, without a pod.
Item 8: a hostile script forges another script's done-marker for the same run where the task keeps them
and where pods wrote them before; both writes are refused and the other script still runs.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local import config as local_config
from local.airflow_client import AirflowClient
from script_runner.run.done_markers import MARKER_PREFIX, md5_hex
from tests.e2e.harness import RunResult, ScriptRunnerHarness, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPTS = Path(__file__).parent / "scripts"
HOURLY = "gcs_script_runner_hourly"


@pytest.fixture
def harness(stack: AirflowClient) -> ScriptRunnerHarness:
    return ScriptRunnerHarness(
        stack, bucket=local_config.BUCKET, kube_url=f"http://127.0.0.1:{local_config.PORTS.kube}"
    )


def _rows(run: RunResult) -> dict[str, dict[str, Any]]:
    report = run.report()
    return {r["path"]: r for r in [*report["scripts"], *report["rejected"]]}


def _pods(harness: ScriptRunnerHarness, script: str, run_ids: list[str]) -> int:
    """How many pods the double scheduled for ``script`` in these runs (any try): from the pods'
    ``Scheduled`` events, which outlive the pods. Other runs (the scheduler's own run of the latest hour,
    started when the DAG is unpaused) are not counted."""
    from script_runner.run.pod_spec import pod_name

    names = {pod_name(script, run, t) for run in run_ids for t in range(1, 6)}
    events = harness._double("GET", "/api/v1/events")["items"]
    return sum(1 for e in events if e.get("reason") == "Scheduled" and e["involvedObject"]["name"] in names)


def _unfinished(stack: AirflowClient) -> list[str]:
    body = stack.request("GET", f"/api/v2/dags/{HOURLY}/dagRuns?state=queued&state=running&limit=100")
    return [str(r["dag_run_id"]) for r in body["dag_runs"]]


def _markers(harness: ScriptRunnerHarness, prefix: str, path: str) -> list[str]:
    """The done-markers' interval keys of one script (its current content)."""
    blob = harness.gcs.bucket(harness.bucket).get_blob(prefix + path)
    root = f"{harness.state_root}/{MARKER_PREFIX}/{path}/{md5_hex(blob.md5_hash)}/"
    return sorted(b.name[len(root) :] for b in harness.gcs.list_blobs(harness.bucket, prefix=root))


def test_intervals_an_hourly_dag_runs_each_script_once_per_interval_and_a_cleared_run_skips(
    harness: ScriptRunnerHarness,
) -> None:
    stack = harness.stack
    if stack.api_version < 2:
        pytest.skip("backfill runs through Airflow 3's REST API")
    try:
        stack.wait_dag_parsed(HOURLY, timeout=90)
    except TimeoutError:
        pytest.skip("the stack runs without the e2e DAG bundle (start it with SR_E2E_DAGS=1)")
    prefix = "e2e-intervals/"
    harness.upload(SCRIPTS / "intervals", prefix)
    settings = {"source": f"gs://{harness.bucket}/{prefix}", "state_root": harness.state_root}
    stack.set_variable("script_runner_settings", json.dumps(settings))
    # A day of its own per session: a reused stack keeps earlier sessions' backfill runs.
    day = (datetime.now(UTC) - timedelta(days=random.randint(2, 600))).date()
    first = datetime(day.year, day.month, day.day, 1, tzinfo=UTC)
    stack.unpause(HOURLY)
    try:
        run_ids = stack.backfill(
            HOURLY, first.isoformat(), (first + timedelta(hours=2)).isoformat(), max_active_runs=1
        )
        assert len(run_ids) == 3, run_ids
        runs = [
            RunResult(harness, r, stack.wait_dag_run(HOURLY, r, timeout=240), dag_id=HOURLY) for r in run_ids
        ]
        keys = [(first + timedelta(hours=h)).strftime("%Y%m%dT%H%MZ") for h in range(3)]
        for run, key in zip(runs, keys, strict=True):
            assert run.state == "success", run.run_id
            log = run.log("hourly.sh")
            assert f"E2E-INTERVAL hourly ran interval={key} date={day.isoformat()}" in log
            assert "status=skipped" not in log  # neither its marker nor its step of another hour
            rows = _rows(run)
            assert rows["hourly.sh"]["status"] == "success"
            daily = rows["daily.sh"]
            assert daily["status"] == ("success" if key.endswith("T0200Z") else "not due"), (key, daily)
        assert _pods(harness, "hourly.sh", run_ids) == 3  # once per interval
        assert _pods(harness, "daily.sh", run_ids) == 1
        day_keys = keys[0][:9]  # YYYYMMDDT: this day's intervals (the latest hour's run is another day)
        assert [k for k in _markers(harness, prefix, "hourly.sh") if k.startswith(day_keys)] == keys
        assert [k for k in _markers(harness, prefix, "daily.sh") if k.startswith(day_keys)] == [keys[1]]

        # A user re-runs the 02:00 interval: both scripts are done for it and skip, without a pod.
        cleared = runs[1]
        stack.clear_dag_run(HOURLY, cleared.run_id)
        assert stack.wait_dag_run(HOURLY, cleared.run_id, timeout=240) == "success"
        tis = cleared.mapped_tasks()
        assert {tis[s]["state"] for s in ("hourly.sh", "daily.sh")} == {"skipped"}
        rows = _rows(cleared)
        for script in ("hourly.sh", "daily.sh"):
            assert rows[script]["status"] == "skipped"
            assert (
                f"already done for interval {keys[1]} (done-marker of run {cleared.run_id})"
                in (rows[script]["reason"])
            )
        assert _pods(harness, "hourly.sh", run_ids) == 3  # no pod for the cleared run
        assert _pods(harness, "daily.sh", run_ids) == 1
    finally:
        stack.pause(HOURLY)
        wait_until("the hourly DAG's runs to end", lambda: not _unfinished(stack), timeout=240, interval=2)
    assert harness.pods_left() == []


def test_intervals_a_forged_done_marker_does_not_make_another_script_succeed_unrun(
    harness: ScriptRunnerHarness,
) -> None:
    run = harness.run_scripts(SCRIPTS / "forge", prefix="e2e-forge/", timeout=240)
    assert run.state == "success"
    hostile = run.log("hostile.sh")
    assert "E2E-FORGE wrote cache/done exit=77" in hostile  # the task's markers: refused to pods
    assert "E2E-FORGE wrote done exit=77" in hostile  # where pods wrote them before: refused too
    assert "E2E-FORGE victim ran" in run.log("victim.sh")
    assert _rows(run)["victim.sh"]["status"] == "success"
    assert harness.pods_left() == []
