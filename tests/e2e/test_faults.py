"""Issue 4's faults, injected by the Kubernetes double, and what a user sees for each.

Each test asserts the task state, the log lines naming the reason, the report row, and that no pod,
container or process is left behind.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).parent / "scripts" / "faults"


def assert_nothing_left(runner: Any) -> None:
    assert runner.pods_left() == []
    assert runner.containers_left() == []


def test_faults_oom_evict_unschedulable_image_pull(runner: Any) -> None:
    run = runner.run_scripts(SCRIPTS / "pod", prefix="e2e-faults-pod/", timeout=360)
    tis = run.mapped_tasks()
    rows = {r["path"]: r for r in run.report()["scripts"]}

    # OOMKilled once (injected): the retry runs with doubled memory and succeeds.
    assert tis["oom.sh"]["state"] == "success"
    assert tis["oom.sh"]["try_number"] == 2
    assert "OOMKilled" in run.log("oom.sh", try_number=1)
    assert rows["oom.sh"]["history"] == ["oom_killed(137)", "success(0)"]

    # Evicted once: rescheduled, not retried (retries=0, still try 1), then succeeds.
    assert tis["evict.sh"]["state"] == "success"
    assert tis["evict.sh"]["try_number"] == 1
    assert rows["evict.sh"]["history"][0].startswith("evicted")
    assert rows["evict.sh"]["status"] == "success"

    # Never scheduled: fails once the start timeout passes, naming FailedScheduling.
    assert tis["unschedulable.sh"]["state"] == "failed"
    log = run.log("unschedulable.sh")
    assert "FailedScheduling" in log
    assert "E2E-NEVER-RUNS" not in log
    assert rows["unschedulable.sh"]["status"] == "unschedulable"

    # Image cannot be pulled: fails, naming the pull error.
    assert tis["image_pull.sh"]["state"] == "failed"
    assert "ErrImagePull" in run.log("image_pull.sh") or "ImagePullBackOff" in run.log("image_pull.sh")
    assert rows["image_pull.sh"]["status"] == "image_pull_error"

    assert_nothing_left(runner)


def test_faults_api_5xx_are_retried_by_the_client(runner: Any) -> None:
    runner.set_faults(
        [
            {"fault": "api_error", "status": 500, "method": "POST", "path": "*/pods", "count": 2},
            {"fault": "api_error", "status": 503, "method": "GET", "path": "*/pods/sr-hello-*", "count": 2},
        ]
    )
    try:
        run = runner.run_scripts(SCRIPTS / "api", prefix="e2e-faults-api/")
        spent = runner.faults()
    finally:
        runner.set_faults([])
    assert [rule["count"] for rule in spent] == [0, 0]  # every injected error was served
    tis = run.mapped_tasks()
    assert tis["hello.sh"]["state"] == "success"
    assert tis["hello.sh"]["try_number"] == 1  # survived inside one attempt
    assert "E2E-API-FAULTS survived" in run.log("hello.sh")
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
