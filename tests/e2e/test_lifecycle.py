"""Issue 12: lifecycle faults, end to end on the local stack (real scheduler), sync and deferrable.

A few DAG runs are shared by the tests below (each run is driven once by a module fixture that does to it
what a user or a failing machine would: mark a task failed or success, kill a task process, restart the
triggerer, pause the DAG, mark the whole run failed). The tests then assert what a user sees: the pod is
gone, the script ran once, its cleanup hook ran, the report's row and history. Never Airflow's try
numbering where a documented scheduler race can change it (see ``RunResult.airflow_lost_a_try``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local import config as local_config
from local import kube as local_kube
from local import processes as local_processes
from script_runner.run.ledger import Ledger
from tests.e2e.harness import DAG_ID, RunResult, ScriptRunnerHarness, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

    from local.airflow_client import AirflowClient

SCRIPTS = Path(__file__).parent / "scripts" / "lifecycle"
POD_GONE_SECS = 10.0  # issue 12: a cancelled task's pod is deleted within 10 s
CLEANUP = "E2E-LIFECYCLE cleanup ran"  # the test scripts' on_exit hook sends it with notify


@dataclass
class Driven:
    """A run the fixture drove, and what it measured while doing so."""

    runner: ScriptRunnerHarness
    run: RunResult
    since: str  # RFC 3339 time before the trigger: pods created after it belong to this run
    seen: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> dict[str, dict[str, Any]]:
        return {r["path"]: r for r in self.run.report()["scripts"]}

    def ledger(self, script: str) -> list[dict[str, Any]]:
        ledger = Ledger(self.runner.gcs, bucket=self.runner.bucket, root=self.runner.state_root)
        return ledger.read(self.run.run_id, script)


def _harness(stack: AirflowClient) -> ScriptRunnerHarness:
    return ScriptRunnerHarness(
        stack, bucket=local_config.BUCKET, kube_url=f"http://127.0.0.1:{local_config.PORTS.kube}"
    )


@contextlib.contextmanager
def _driving(driven: Driven) -> Iterator[Driven]:
    """Stop the run if driving it fails: the DAG allows one active run, a stuck one would block the next."""
    try:
        yield driven
    except BaseException:
        with contextlib.suppress(Exception):
            driven.runner.stack.unpause(DAG_ID)
            driven.runner.stack.set_dag_run_state(DAG_ID, driven.run.run_id, "failed")
        raise


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ti(driven: Driven, script: str) -> dict[str, Any]:
    return wait_until(f"the task of {script}", lambda: driven.run.mapped_tasks().get(script), 120)  # type: ignore[no-any-return]


def _mark(driven: Driven, script: str, state: str) -> float:
    """Mark a running script's task ``state`` as a user does; seconds until its pod was gone."""
    ti = _ti(driven, script)
    started = time.monotonic()
    driven.runner.stack.set_task_state(DAG_ID, driven.run.run_id, ti["task_id"], ti["map_index"], state)
    wait_until(f"the pod of {script} to go", lambda: not driven.runner.pods_of(script), 60, 0.2)
    return round(time.monotonic() - started, 1)


def _assert_ran_once(log: str, begin: str, end: str) -> None:
    """The script started once and ended once (its lines carry its pid).

    The KubernetesPodOperator, resuming a log it lost to a refused connection (the API server restarting),
    reads from its last line's second again and may print that line twice; it says so in the log ("might
    get duplicated"). A repeated identical line is that, not a second run: a second run has another pid.
    """
    begins = [line for line in log.splitlines() if begin in line]
    ends = [line for line in log.splitlines() if end in line]
    assert len(set(begins)) == 1, log
    assert len(set(ends)) == 1, log
    if len(begins) > 1 or len(ends) > 1:
        assert "might get duplicated" in log, log


def _executor_worker(pid: int) -> int:
    """The LocalExecutor worker process that runs the task process ``pid`` (its supervisor, an ancestor)."""
    current = pid
    while current > 1:
        cmdline = Path(f"/proc/{current}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        if "LocalExecutor" in cmdline:
            return current
        stat = Path(f"/proc/{current}/stat").read_text()
        current = int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after the command in parentheses
    raise AssertionError(f"no LocalExecutor worker among the ancestors of task process {pid}")


def _wait_running(driven: Driven, *scripts: str) -> None:
    """Wait until each script is under way: its pod runs and the script printed its first line.

    The test scripts print an ``E2E-`` line once their cleanup hooks are installed. A pod that is Running
    has not necessarily started the script yet (the entrypoint first gets a token and fetches and checks
    it: seconds with podman on a busy machine): a SIGTERM then ends the pod before any hook exists.
    """
    for script in scripts:

        def started(s: str = script) -> bool:
            pod = driven.runner.running_pod(s)
            return pod is not None and "\nE2E-" in "\n" + driven.runner.pod_log(pod)

        wait_until(f"{script} to start in its pod", started, 240)


# -- sync mode: cancel (failed, success), worker loss, the script's timeout, a paused DAG ----------------
@pytest.fixture(scope="module")
def sync_run(stack: AirflowClient) -> Driven:
    runner = _harness(stack)
    # Airflow's execution_timeout for every task of this run; only exec_timeout.sh runs that long.
    settings = {"execution_timeout": "60s"}
    launched = runner.launch(SCRIPTS / "sync", prefix="e2e-lifecycle-sync/", settings=settings)
    driven = Driven(runner, launched, _now())
    with _driving(driven):
        _wait_running(driven, "cancel_failed.sh", "cancel_success.sh", "worker_kill.sh", "worker_gone.sh")
        seen = driven.seen
        seen["worker_pod"] = runner.running_pod("worker_kill.sh")
        ti = _ti(driven, "worker_kill.sh")
        seen["killed_pid"] = ti["pid"]
        os.kill(int(ti["pid"]), signal.SIGKILL)  # the task process dies as on an OOM-killed worker
        # The LocalExecutor's worker (the task's supervisor, which heartbeats for it) dies as on a lost node
        seen["gone_pod"] = runner.running_pod("worker_gone.sh")
        gone = _ti(driven, "worker_gone.sh")
        seen["gone_worker"] = _executor_worker(int(gone["pid"]))
        os.kill(seen["gone_worker"], signal.SIGKILL)
        seen["failed_gone_secs"] = _mark(driven, "cancel_failed.sh", "failed")
        seen["success_gone_secs"] = _mark(driven, "cancel_success.sh", "success")

        # The killed task's next try reattaches; once it runs, pause the DAG: what runs ends, nothing new starts.
        def reattached() -> bool:
            now = stack.task_instance(DAG_ID, driven.run.run_id, ti["task_id"], ti["map_index"])
            return bool(now["state"] == "running" and now["try_number"] > ti["try_number"])

        wait_until("the killed task's next try", reattached, 120)

        def gone_retried() -> bool:
            now = stack.task_instance(DAG_ID, driven.run.run_id, gone["task_id"], gone["map_index"])
            return bool(now["state"] == "running" and now["try_number"] > gone["try_number"])

        # no heartbeat for the stack's 60 s (local.airflow_env.HEARTBEAT_TIMEOUT), then a retry 2 s later
        wait_until("the next try of the task whose worker died", gone_retried, 180)
        stack.pause(DAG_ID)
        try:
            wait_until(
                "every script to end while paused",
                lambda: all(t["state"] in ("success", "failed") for t in driven.run.mapped_tasks().values()),
                180,
            )
            time.sleep(8)  # several scheduler loops: the report must not start while the DAG is paused
            seen["paused_report_state"] = next(
                t["state"] for t in driven.run.task_instances() if t["task_id"] == "report"
            )
            seen["paused_run_state"] = stack.dag_run(DAG_ID, driven.run.run_id)["state"]
        finally:
            stack.unpause(DAG_ID)
        driven.run.state = stack.wait_dag_run(DAG_ID, driven.run.run_id, timeout=180)
    return driven


def test_lifecycle_task_marked_failed_deletes_its_pod_runs_cleanup_and_reports_cancelled(
    sync_run: Driven,
) -> None:
    assert sync_run.seen["failed_gone_secs"] <= POD_GONE_SECS, sync_run.seen
    assert CLEANUP in sync_run.run.events("cancel_failed.sh")  # SIGTERM reached the script
    row = sync_run.rows()["cancel_failed.sh"]
    assert row["status"] == "cancelled", row
    assert row["history"] == ["cancelled(None)"], row
    assert sync_run.run.mapped_tasks()["cancel_failed.sh"]["state"] == "failed"
    assert len(sync_run.runner.pods_created("cancel_failed.sh", since=sync_run.since)) == 1  # no retry


def test_lifecycle_task_marked_success_deletes_its_pod_and_reports_why(sync_run: Driven) -> None:
    assert sync_run.seen["success_gone_secs"] <= POD_GONE_SECS, sync_run.seen
    assert CLEANUP in sync_run.run.events("cancel_success.sh")
    row = sync_run.rows()["cancel_success.sh"]
    assert row["history"] == ["cancelled(None)"], row
    assert row["reason"].startswith("marked success outside the task while its pod ran"), row
    assert sync_run.run.mapped_tasks()["cancel_success.sh"]["state"] == "success"
    assert len(sync_run.runner.pods_created("cancel_success.sh", since=sync_run.since)) == 1


def test_lifecycle_killed_task_process_reattaches_to_the_same_pod_and_the_script_runs_once(
    sync_run: Driven,
) -> None:
    first = sync_run.seen["worker_pod"]
    created = sync_run.runner.pods_created("worker_kill.sh", since=sync_run.since)
    assert created == {first["uid"]}  # the next try found the running pod: no second pod
    ti = sync_run.run.mapped_tasks()["worker_kill.sh"]
    assert ti["state"] == "success"
    log = sync_run.run.log("worker_kill.sh")  # the last try: the one that reattached
    assert log.count("E2E-WORKER begin") == 1, log
    assert log.count("E2E-WORKER end") == 1, log
    row = sync_run.rows()["worker_kill.sh"]
    assert row["status"] == "success"
    assert row["history"] == ["success(0)"], row  # one run of the script, recorded once


def test_lifecycle_lost_worker_is_noticed_and_the_next_try_reattaches_to_the_same_pod(
    sync_run: Driven,
) -> None:
    first = sync_run.seen["gone_pod"]
    created = sync_run.runner.pods_created("worker_gone.sh", since=sync_run.since)
    assert created == {first["uid"]}  # no second pod: the orphaned try did not delete it, the next found it
    assert sync_run.run.mapped_tasks()["worker_gone.sh"]["state"] == "success"
    _assert_ran_once(sync_run.run.log("worker_gone.sh"), "E2E-GONE begin", "E2E-GONE end")
    row = sync_run.rows()["worker_gone.sh"]
    assert row["status"] == "success", row
    assert row["history"] == ["success(0)"], row  # one run of the script, no retry spent
    assert not local_processes.process_alive(sync_run.seen["gone_worker"])


def test_lifecycle_script_over_its_timeout_is_stopped_and_not_retried(sync_run: Driven) -> None:
    row = sync_run.rows()["deadline.sh"]
    assert row["status"] == "timeout", row
    assert "timeout" in row["reason"], row
    assert row["history"] == [f"timeout({row['exit_code']})"], row  # retries=0: one attempt
    assert len(sync_run.runner.pods_created("deadline.sh", since=sync_run.since)) == 1
    log = sync_run.run.log("deadline.sh", try_number=1)
    assert "E2E-DEADLINE begin" in log
    assert "E2E-DEADLINE end" not in log


def test_lifecycle_task_over_airflows_execution_timeout_deletes_its_pod_and_is_not_retried(
    sync_run: Driven,
) -> None:
    row = sync_run.rows()["exec_timeout.sh"]
    assert row["status"] == "timeout", row
    assert "execution_timeout" in row["reason"], row
    assert row["history"] == ["timeout(None)"], row  # retries=0: Airflow's retries are not spent on it
    assert sync_run.run.mapped_tasks()["exec_timeout.sh"]["state"] == "failed"
    assert len(sync_run.runner.pods_created("exec_timeout.sh", since=sync_run.since)) == 1
    assert CLEANUP in sync_run.run.events("exec_timeout.sh")  # its pod was stopped


def test_lifecycle_paused_dag_finishes_running_scripts_and_starts_nothing_new(sync_run: Driven) -> None:
    assert sync_run.seen["paused_run_state"] == "running", sync_run.seen
    assert sync_run.seen["paused_report_state"] in (None, "scheduled", "none"), sync_run.seen
    assert sync_run.run.state == "failed"  # after the unpause the report ran: cancelled/timeout are problems
    assert sync_run.rows()["worker_kill.sh"]["status"] == "success"
    assert sync_run.rows()["worker_gone.sh"]["status"] == "success"
    assert sync_run.runner.pods_left() == []
    assert sync_run.runner.processes_left() == []


# -- deferrable mode: cancel while deferred, the triggerer restarted ------------------------------------
@pytest.fixture(scope="module")
def deferred_run(stack: AirflowClient) -> Driven:
    runner = _harness(stack)
    launched = runner.launch(
        SCRIPTS / "deferred", prefix="e2e-lifecycle-deferred/", settings={"deferrable": True}
    )
    driven = Driven(runner, launched, _now())
    scripts = ("deferred_cancel.sh", "triggerer_restart.sh", "deferred_outages.sh")
    with _driving(driven):
        _wait_running(driven, *scripts)
        for script in scripts:
            wait_until(f"{script} to defer", lambda s=script: _ti(driven, s)["state"] == "deferred", 120)
        driven.seen["pods"] = {s: runner.running_pod(s) for s in scripts[1:]}
        driven.seen["cancel_gone_secs"] = _mark(driven, "deferred_cancel.sh", "failed")
        local_processes.stop("triggerer")
        local_processes.spawn("triggerer", [str(local_config.VENV_BIN / "airflow"), "triggerer"])
        # deferred_outages.sh runs on through the scheduler's crash, the double's restart and an API outage
        with _outages():
            driven.run.state = stack.wait_dag_run(DAG_ID, driven.run.run_id, timeout=240)
    return driven


def test_lifecycle_deferred_task_marked_failed_deletes_its_pod_and_reports_cancelled(
    deferred_run: Driven,
) -> None:
    assert deferred_run.seen["cancel_gone_secs"] <= POD_GONE_SECS, deferred_run.seen
    row = deferred_run.rows()["deferred_cancel.sh"]
    assert row["status"] == "cancelled", row
    assert row["reason"].startswith("cancelled (marked failed outside the task)"), row
    assert len(deferred_run.runner.pods_created("deferred_cancel.sh", since=deferred_run.since)) == 1
    assert CLEANUP in deferred_run.run.events("deferred_cancel.sh")


@pytest.mark.parametrize(
    ("script", "begin", "end"),
    [
        pytest.param("triggerer_restart.sh", "E2E-SLOW begin", "E2E-SLOW end", id="triggerer-restarted"),
        pytest.param(
            "deferred_outages.sh",
            "E2E-OUTAGES begin",
            "E2E-OUTAGES end",
            id="scheduler-killed-double-restarted-api-unreachable",
        ),
    ],
)
def test_lifecycle_deferred_restarts_keep_watching_the_same_pod(
    deferred_run: Driven, script: str, begin: str, end: str
) -> None:
    created = deferred_run.runner.pods_created(script, since=deferred_run.since)
    assert created == {deferred_run.seen["pods"][script]["uid"]}  # no second pod
    assert deferred_run.run.mapped_tasks()[script]["state"] == "success"  # retries=0: nothing spent
    _assert_ran_once(deferred_run.run.log(script), begin, end)
    assert deferred_run.rows()[script]["history"] == ["success(0)"]


def test_lifecycle_deferred_run_leaves_a_complete_report_and_nothing_running(deferred_run: Driven) -> None:
    report = deferred_run.run.report()
    assert {r["path"]: r["status"] for r in report["scripts"]} == {
        "deferred_cancel.sh": "cancelled",
        "triggerer_restart.sh": "success",
        "deferred_outages.sh": "success",
    }
    assert deferred_run.runner.pods_left() == []
    assert deferred_run.runner.processes_left() == []


# -- a whole run marked failed ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def failed_run(stack: AirflowClient) -> Driven:
    runner = _harness(stack)
    driven = Driven(runner, runner.launch(SCRIPTS / "run", prefix="e2e-lifecycle-run/"), _now())
    with _driving(driven):
        scripts = ("run_failed_a.sh", "run_failed_b.sh")
        _wait_running(driven, *scripts)
        started = time.monotonic()
        stack.set_dag_run_state(DAG_ID, driven.run.run_id, "failed")
        wait_until("every pod of the run to go", lambda: not any(runner.pods_of(s) for s in scripts), 60, 0.2)
        driven.seen["gone_secs"] = round(time.monotonic() - started, 1)
        driven.run.state = stack.wait_dag_run(DAG_ID, driven.run.run_id, timeout=60)
    return driven


def test_lifecycle_run_marked_failed_deletes_every_pod_of_the_run(failed_run: Driven) -> None:
    assert failed_run.seen["gone_secs"] <= POD_GONE_SECS, failed_run.seen
    assert failed_run.run.state == "failed"
    for script in ("run_failed_a.sh", "run_failed_b.sh"):
        assert CLEANUP in failed_run.run.events(script), script
        assert [r["status"] for r in failed_run.ledger(script)] == ["cancelled"], script
    assert failed_run.runner.pods_left() == []
    assert failed_run.runner.processes_left() == []


# -- restarts: the scheduler crashes, the Kubernetes double restarts, its API answers nothing for 30 s -----
FREEZE_SECS = 30


@contextlib.contextmanager
def _outages() -> Iterator[None]:
    """Crash the scheduler, restart the Kubernetes double, then stop its API for 30 s; yield to wait.

    The scheduler dies at once (SIGKILL, its process only: the LocalExecutor's workers run on, as Celery or
    Kubernetes workers would) and a new one starts. The double restarts as an API server does (its pods run
    on, its objects are kept). Then the API (and its kubelet) stop answering: connections hang, as on a
    lost network. On the way out, the dead scheduler's idle workers are stopped (its process group only).
    """
    old_scheduler = local_processes.alive("scheduler")
    assert old_scheduler is not None
    sessions = _db_client_ports(old_scheduler)
    os.kill(old_scheduler, signal.SIGKILL)
    _end_db_sessions(sessions)
    try:
        wait_until("the old scheduler to exit", lambda: local_processes.alive("scheduler") is None, 30)
        local_processes.spawn("scheduler", [str(local_config.VENV_BIN / "airflow"), "scheduler"])
        local_kube.restart_kube()
        kube = local_processes.alive("kube")
        assert kube is not None
        os.kill(kube, signal.SIGSTOP)
        try:
            time.sleep(FREEZE_SECS)
        finally:
            os.kill(kube, signal.SIGCONT)
        yield
    finally:
        # SIGKILL: the workers inherited the scheduler's SIGTERM handler (it waits for a loop that is gone)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old_scheduler, signal.SIGKILL)


def _db_client_ports(pid: int) -> list[int]:
    """Local ports of ``pid``'s own TCP connections to the stack's PostgreSQL."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = []
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if inode in inodes and int(remote.split(":")[1], 16) == local_config.PORTS.pg:
            ports.append(int(local.split(":")[1], 16))
    return ports


def _end_db_sessions(ports: list[int]) -> None:
    """End the dead scheduler's database sessions, as the kernel closes a killed process's sockets.

    Here they outlive it: the LocalExecutor's workers were forked from the scheduler and hold the same
    sockets, so a session killed in the middle of a scheduling loop stays "idle in transaction" with the
    run's row locked, and the new scheduler never schedules that run again (seen: the report task never
    started). A whole scheduler container killed takes its workers and these sockets with it.
    """
    if not ports:
        return
    import psycopg2

    conn = psycopg2.connect(
        host="127.0.0.1", port=local_config.PORTS.pg, user="airflow", password="airflow", dbname="airflow"
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY(%s)", (ports,)
            )
        conn.commit()
    finally:
        conn.close()


RESTART_SCRIPTS = ("scheduler_crash.sh", "kube_restart.sh", "api_frozen.sh")


@pytest.fixture(scope="module")
def restarts_run(stack: AirflowClient) -> Driven:
    runner = _harness(stack)
    driven = Driven(runner, runner.launch(SCRIPTS / "restarts", prefix="e2e-lifecycle-restarts/"), _now())
    with _driving(driven):
        _wait_running(driven, *RESTART_SCRIPTS)
        driven.seen["pods"] = {s: runner.running_pod(s) for s in RESTART_SCRIPTS}
        with _outages():
            driven.run.state = stack.wait_dag_run(DAG_ID, driven.run.run_id, timeout=240)
    return driven


@pytest.mark.parametrize(
    ("script", "begin", "end"),
    [
        pytest.param("scheduler_crash.sh", "E2E-SCHED begin", "E2E-SCHED end", id="scheduler-killed"),
        pytest.param("kube_restart.sh", "E2E-KUBE begin", "E2E-KUBE end", id="double-restarted"),
        pytest.param("api_frozen.sh", "E2E-FROZEN begin", "E2E-FROZEN end", id="api-unreachable-30s"),
    ],
)
def test_lifecycle_restart_or_outage_mid_run_keeps_one_pod_and_spends_no_retry(
    restarts_run: Driven, script: str, begin: str, end: str
) -> None:
    created = restarts_run.runner.pods_created(script, since=restarts_run.since)
    assert created == {restarts_run.seen["pods"][script]["uid"]}  # no second pod
    assert restarts_run.run.mapped_tasks()[script]["state"] == "success"  # retries=0: nothing was spent
    row = restarts_run.rows()[script]
    assert row["history"] == ["success(0)"], row
    _assert_ran_once(restarts_run.run.log(script), begin, end)


def test_lifecycle_restarts_leave_a_complete_report_and_nothing_running(restarts_run: Driven) -> None:
    assert restarts_run.run.state == "success"
    report = restarts_run.run.report()
    assert report["summary"]["success"] == len(RESTART_SCRIPTS), report["summary"]
    assert restarts_run.runner.pods_left() == []
    assert restarts_run.runner.processes_left() == []
