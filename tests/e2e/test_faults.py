"""Issue 4's faults, injected by the Kubernetes double, and what a user sees for each.

One DAG run carries the pod faults (a script each) and is shared by the tests below, one test per fault;
each asserts the task state, the log lines naming the reason and the report row. The run-level test
asserts the run fails (some faults are failures), and that no pod, container or process is left behind.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local import config as local_config
from tests.e2e.harness import RunResult, ScriptRunnerHarness

if TYPE_CHECKING:
    from local.airflow_client import AirflowClient

SCRIPTS = Path(__file__).parent / "scripts" / "faults"


def assert_nothing_left(runner: Any) -> None:
    assert runner.pods_left() == []
    assert runner.containers_left() == []
    assert runner.processes_left() == []


def _harness(stack: AirflowClient) -> ScriptRunnerHarness:
    return ScriptRunnerHarness(
        stack, bucket=local_config.BUCKET, kube_url=f"http://127.0.0.1:{local_config.PORTS.kube}"
    )


@pytest.fixture(scope="module")
def pod_faults(stack: AirflowClient) -> tuple[ScriptRunnerHarness, RunResult]:
    """One run with a script per pod fault (oom, evict, preempt, node_shutdown, unschedulable, image_pull)."""
    runner = _harness(stack)
    return runner, runner.run_scripts(SCRIPTS / "pod", prefix="e2e-faults-pod/", timeout=420)


def _rows(run: RunResult) -> dict[str, dict[str, Any]]:
    return {r["path"]: r for r in run.report()["scripts"]}


def test_fault_oom_retries_once_with_doubled_memory(pod_faults: Any) -> None:
    _, run = pod_faults
    ti = run.mapped_tasks()["oom.sh"]
    assert ti["state"] == "success"
    assert ti["try_number"] == 2
    assert "OOMKilled" in run.log("oom.sh", try_number=1)
    second = run.log("oom.sh", try_number=2)
    assert "memory=128Mi reason=after 1 OOMKilled attempt(s)" in second
    assert "E2E-OOM try=2" in second
    assert _rows(run)["oom.sh"]["history"] == ["oom_killed(137)", "success(0)"]


def _rescheduled_once(run: RunResult, script: str) -> tuple[str, list[str]]:
    """A disruption that spent no retry: the try-1 log and the report history (a disruption, then success)."""
    ti = run.mapped_tasks()[script]
    assert ti["state"] == "success"  # retries=0: had the disruption counted as a retry, the task had failed
    # Still try 1, unless Airflow's scheduler spent a try on its own race (not a script retry, see harness).
    assert ti["try_number"] == 1 or run.airflow_lost_a_try(script)
    log = run.log(script, try_number=1)
    assert "not counted as a retry" in log
    row = _rows(run)[script]
    assert row["status"] == "success"
    assert len(row["history"]) == 2
    assert row["history"][1] == "success(0)"  # one disruption, then one pod that succeeded
    return log, row["history"]


def test_fault_eviction_is_rescheduled_without_spending_a_retry(pod_faults: Any) -> None:
    _, run = pod_faults
    log, history = _rescheduled_once(run, "evict.sh")
    assert "status=evicted" in log
    assert "Evicted" in log
    assert history == ["evicted(137)", "success(0)"]


def test_fault_preemption_deletes_the_pod_and_is_rescheduled(pod_faults: Any) -> None:
    _, run = pod_faults
    log, history = _rescheduled_once(run, "preempt.sh")
    # seen through the pod's events once it is gone, or its DisruptionTarget condition if read before that
    assert "pod deleted (Preempted)" in log or "PreemptionByScheduler" in log
    assert history[0].startswith("evicted")


def test_fault_node_shutdown_is_rescheduled_without_spending_a_retry(pod_faults: Any) -> None:
    _, run = pod_faults
    log, history = _rescheduled_once(run, "node_shutdown.sh")
    assert "TerminationByKubelet" in log or "Terminated" in log
    assert history[0].startswith("evicted")


def test_fault_unschedulable_fails_after_the_start_timeout(pod_faults: Any) -> None:
    _, run = pod_faults
    assert run.mapped_tasks()["unschedulable.sh"]["state"] == "failed"
    log = run.log("unschedulable.sh")
    assert "FailedScheduling" in log
    assert "E2E-NEVER-RUNS" not in log
    row = _rows(run)["unschedulable.sh"]
    assert row["status"] == "unschedulable"
    assert "could not be scheduled" in row["reason"]


def test_fault_image_pull_error_fails_naming_the_pull_error(pod_faults: Any) -> None:
    _, run = pod_faults
    assert run.mapped_tasks()["image_pull.sh"]["state"] == "failed"
    log = run.log("image_pull.sh")
    assert "ErrImagePull" in log or "ImagePullBackOff" in log
    assert _rows(run)["image_pull.sh"]["status"] == "image_pull_error"


def test_fault_run_fails_reports_every_fault_and_leaves_nothing(pod_faults: Any) -> None:
    runner, run = pod_faults
    assert run.state == "failed"  # two scripts failed: the report task fails the run and notifies
    summary = run.report()["summary"]
    assert summary["unschedulable"] == 1
    assert summary["image_pull_error"] == 1
    assert summary["success"] == 4
    markdown = run.report_markdown()
    for script in (
        "oom.sh",
        "evict.sh",
        "preempt.sh",
        "node_shutdown.sh",
        "unschedulable.sh",
        "image_pull.sh",
    ):
        assert script in markdown
    report_log = runner.stack.task_log("gcs_script_runner", run.run_id, "report", -1, 1)
    assert "run has problems" in report_log
    assert_nothing_left(runner)


def test_faults_api_5xx_timeouts_and_pod_name_patterns(runner: Any) -> None:
    runner.set_faults(
        [
            {"fault": "api_error", "status": 500, "method": "POST", "path": "*/pods", "count": 2},
            {"fault": "api_error", "status": 503, "method": "GET", "path": "*/pods/sr-hello-*", "count": 2},
            {"fault": "api_timeout", "seconds": 2, "method": "GET", "path": "*/pods/sr-hello-*", "count": 1},
            {"fault": "oom", "match": "sr-patterned-*", "count": 1},
        ]
    )
    try:
        run = runner.run_scripts(SCRIPTS / "api", prefix="e2e-faults-api/")
        spent = runner.faults()
    finally:
        runner.set_faults([])
    assert [rule["count"] for rule in spent] == [0, 0, 0, 0]  # every injected fault was served
    tis = run.mapped_tasks()
    assert tis["hello.sh"]["state"] == "success"
    assert tis["hello.sh"]["try_number"] == 1  # 5xx and a slow 504 survived inside one attempt
    assert "E2E-API-FAULTS survived" in run.log("hello.sh")
    # The name-pattern rule OOM-killed the first pod of patterned.sh; its retry got doubled memory.
    assert tis["patterned.sh"]["state"] == "success"
    assert tis["patterned.sh"]["try_number"] == 2
    assert "OOMKilled" in run.log("patterned.sh", try_number=1)
    assert "E2E-PATTERN try=2" in run.log("patterned.sh", try_number=2)
    assert_nothing_left(runner)


def test_faults_kubelet_restart_keeps_running_pods(runner: Any) -> None:
    restarts_before = runner.double_state()["kubelet_restarts"]

    def restart_when_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(p.get("phase") == "Running" for p in runner.double_state()["pods"]):
                time.sleep(1)
                runner.restart_kubelet()
                return
            time.sleep(0.3)

    thread = threading.Thread(target=restart_when_running, daemon=True)
    thread.start()
    run = runner.run_scripts(SCRIPTS / "restart", prefix="e2e-faults-restart/")
    thread.join(timeout=5)
    assert runner.double_state()["kubelet_restarts"] == restarts_before + 1
    tis = run.mapped_tasks()
    assert tis["slow.sh"]["state"] == "success"
    log = run.log("slow.sh")
    assert "E2E-RESTART begin" in log
    assert "E2E-RESTART end" in log
    assert_nothing_left(runner)


def test_faults_real_oom_in_a_container_then_doubled_memory(runner: Any) -> None:
    if runner.double_state().get("kubelet_mode") != "podman":
        pytest.skip("needs the podman kubelet (real cgroup memory limits); the stack runs pods as processes")
    run = runner.run_scripts(SCRIPTS / "realoom", prefix="e2e-faults-realoom/")
    tis = run.mapped_tasks()
    rows = {r["path"]: r for r in run.report()["scripts"]}
    assert tis["hog.sh"]["state"] == "success"
    assert tis["hog.sh"]["try_number"] == 2
    assert "OOMKilled" in run.log("hog.sh", try_number=1)
    assert "E2E-HOG allocated 96 MiB" in run.log("hog.sh", try_number=2)
    assert rows["hog.sh"]["history"] == ["oom_killed(137)", "success(0)"]
    assert_nothing_left(runner)
