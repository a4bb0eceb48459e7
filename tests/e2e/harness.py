"""Drive the gcs_script_runner DAG on the local stack the way a user would, and read back what they see."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import config as local_config
from local import kube as local_kube
from local import stack as local_stack
from local.kube_double.control import call as double_call

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "gcs_script_runner"


def wait_until(what: str, check: Any, timeout: float, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns something true and return that; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; {local_stack.diagnosis()}"
            )
        time.sleep(interval)


@dataclass
class RunResult:
    """One finished DAG run and accessors for what a user looks at."""

    runner: ScriptRunnerHarness
    run_id: str
    state: str
    dag_id: str = DAG_ID  # another DAG built by build_dag (tests/e2e/dags)

    def task_instances(self) -> list[dict[str, Any]]:
        return list(self.runner.stack.task_instances(self.dag_id, self.run_id))

    def mapped_tasks(self) -> dict[str, dict[str, Any]]:
        """Mapped run_scripts instances by their rendered label (the script path).

        Airflow 2 renders the label when the task ends: a running or deferred instance has none yet, and
        is named from discover's plan (its index in the list it was mapped over).
        """
        out = {}
        plans: dict[str, dict[int, str]] = {}
        for ti in self.task_instances():
            if ti["task_id"].startswith("run_scripts") and ti.get("map_index", -1) >= 0:
                label = ti.get("rendered_map_index")
                if not label:
                    if ti["task_id"] not in plans:
                        plans[ti["task_id"]] = self._planned_paths(ti["task_id"])
                    label = plans[ti["task_id"]].get(ti["map_index"], str(ti["map_index"]))
                out[label] = ti
        return out

    def _planned_paths(self, task_id: str) -> dict[int, str]:
        """Script paths by map index for one run task, from discover's XCom (shard 0: its return value)."""
        shard = task_id.rpartition("_")[2]
        key = f"shard_{shard}" if shard.isdigit() and shard != "0" else "return_value"
        specs = self.runner.stack.xcom(self.dag_id, self.run_id, "discover", key) or []
        return {i: str(spec["path"]) for i, spec in enumerate(specs)}

    def log(self, script: str, *, try_number: int | None = None) -> str:
        ti = self.mapped_tasks()[script]
        return str(
            self.runner.stack.task_log(
                self.dag_id, self.run_id, ti["task_id"], ti["map_index"], try_number or ti["try_number"]
            )
        )

    def logs(self, script: str) -> list[str]:
        """The logs of every try Airflow kept for this script, oldest first.

        A try that the scheduler's deferral race renumbered (apache/airflow#67287) has no task-instance
        record: its log answers 404 and is left out, as the UI shows no such try either.
        """
        ti = self.mapped_tasks()[script]
        out = []
        for number in range(1, int(ti["try_number"]) + 1):
            try:
                out.append(self.log(script, try_number=number))
            except RuntimeError as exc:
                if ": 404 " not in str(exc):
                    raise
        return out

    def airflow_lost_a_try(self, script: str) -> bool:
        """Whether the scheduler spent a try of this instance on a stale executor event (not our policy).

        Airflow marks an instance up_for_retry when a worker's "finished" event for a rescheduled or deferred
        attempt is drained after the instance was queued again (apache/airflow#71172 and #67287): the try
        number then grows although no script attempt failed. The scheduler log names that instance.
        """
        ti = self.mapped_tasks()[script]
        marker = f"{self.run_id} map_index={ti['map_index']} ["
        scheduler_log = local_config.LOGS / "scheduler.log"
        return any(
            marker in line and "finished with state success, but the task instance's state attribute" in line
            for line in scheduler_log.read_text(errors="replace").splitlines()
        )

    def report(self) -> dict[str, Any]:
        bucket = self.runner.bucket
        blob = self.runner.gcs.bucket(bucket).blob(f"{self.runner.state_root}/reports/{self.run_id}.json")
        return json.loads(blob.download_as_bytes())  # type: ignore[no-any-return]

    def events(self, script: str) -> list[str]:
        """Messages of the events ``script`` wrote with ``notify`` in this run (read from GCS, report or not)."""
        prefix = f"{self.runner.state_root}/events/{self.run_id}/{script}/"
        return [
            str(json.loads(blob.download_as_bytes()).get("message", ""))
            for blob in self.runner.gcs.list_blobs(self.runner.bucket, prefix=prefix)
        ]

    def report_markdown(self) -> str:
        blob = self.runner.gcs.bucket(self.runner.bucket).blob(
            f"{self.runner.state_root}/reports/{self.run_id}.md"
        )
        return str(blob.download_as_text())


class ScriptRunnerHarness:
    """Uploads scripts, points the settings Variable at them, triggers and waits."""

    def __init__(self, stack: Any, *, bucket: str, kube_url: str) -> None:
        self.stack = stack
        self.bucket = bucket
        self.kube_url = kube_url
        self.state_root = (
            f"e2e-state/{uuid.uuid4().hex[:10]}"  # one per test: markers never leak between tests
        )
        from google.cloud import storage

        self.gcs = storage.Client(project="test-project")

    def upload(self, folder: Path, prefix: str) -> list[str]:
        """Replace gs://<bucket>/PREFIX with ``folder``'s files; the uploaded object names."""
        from local.demo import replace_prefix

        return replace_prefix(self.gcs, self.bucket, folder, prefix)

    def run_scripts(
        self,
        folder: Path,
        *,
        prefix: str,
        settings: dict[str, Any] | None = None,
        conf: dict[str, Any] | None = None,
        timeout: float = 300,
    ) -> RunResult:
        self.upload(folder, prefix)
        # Each test session gets its own state root, so done-markers of an earlier session on a reused
        # stack never turn this run's scripts into "skipped".
        merged = {"source": f"gs://{self.bucket}/{prefix}", "state_root": self.state_root, **(settings or {})}
        self.stack.set_variable("script_runner_settings", json.dumps(merged))
        return self.trigger(conf=conf, timeout=timeout)

    def launch(self, folder: Path, *, prefix: str, settings: dict[str, Any] | None = None) -> RunResult:
        """Upload, configure and trigger like :meth:`run_scripts`, but return at once (state ``running``)."""
        self.upload(folder, prefix)
        merged = {"source": f"gs://{self.bucket}/{prefix}", "state_root": self.state_root, **(settings or {})}
        self.stack.set_variable("script_runner_settings", json.dumps(merged))
        self.stack.wait_dag_parsed(DAG_ID, timeout=120)
        self.stack.unpause(DAG_ID)
        return RunResult(self, self.stack.trigger_dag(DAG_ID, {}), "running")

    def running_pod(self, script: str) -> dict[str, Any] | None:
        """The pod of ``script`` (a path relative to the source) in phase Running, if there is one."""
        for pod in self.double_state()["pods"]:
            if pod.get("phase") == "Running" and _is_pod_of(pod["name"], script):
                return dict(pod)
        return None

    def pod_log(self, pod: dict[str, Any]) -> str:
        """What the pod's container has written so far ("" once the pod is gone)."""
        path = f"/api/v1/namespaces/{pod['namespace']}/pods/{pod['name']}/log"
        try:
            with urllib.request.urlopen(f"{self.kube_url}{path}", timeout=30) as resp:
                return str(resp.read().decode(errors="replace"))
        except urllib.error.HTTPError:
            return ""

    def pods_of(self, script: str) -> list[dict[str, Any]]:
        """Pods of ``script`` that exist now (any phase)."""
        return [p for p in self.double_state()["pods"] if _is_pod_of(p["name"], script)]

    def pods_created(self, script: str, *, since: str) -> set[str]:
        """Uids of every pod of ``script`` the double scheduled since ``since`` (an RFC 3339 time, UTC).

        Read from the pods' ``Scheduled`` events, which outlive the pods: a second pod for one script
        shows here even after it was deleted.
        """
        events = self._double("GET", "/api/v1/events")["items"]
        return {
            e["involvedObject"]["uid"]
            for e in events
            if e.get("reason") == "Scheduled"
            and _is_pod_of(e["involvedObject"]["name"], script)
            and str(e.get("firstTimestamp") or "") >= since
        }

    def trigger(self, *, conf: dict[str, Any] | None = None, timeout: float = 300) -> RunResult:
        self.stack.wait_dag_parsed(DAG_ID, timeout=120)
        self.stack.unpause(DAG_ID)
        run_id = self.stack.trigger_dag(DAG_ID, conf or {})
        try:
            state = self.stack.wait_dag_run(DAG_ID, run_id, timeout=timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; {local_stack.diagnosis()}") from exc
        return RunResult(self, run_id, state)

    def _double(self, method: str, path: str, body: Any = None) -> Any:
        return double_call(self.kube_url, method, path, body)

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        """Replace the double's fault rules (pod name patterns, API method/path with a count)."""
        self._double("POST", "/_double/faults", rules)

    def faults(self) -> list[dict[str, Any]]:
        return list(self._double("GET", "/_double/faults"))

    def double_state(self) -> dict[str, Any]:
        return dict(self._double("GET", "/_double/state"))

    def restart_kubelet(self) -> None:
        self._double("POST", "/_double/kubelet/restart")

    def containers_left(self) -> list[str]:
        """Podman containers the kubelet started that still exist (empty in process mode)."""
        state = self.double_state()
        if state.get("kubelet_mode") != "podman" or not shutil.which("podman"):
            return []
        env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "local" / "image" / "containers.conf")}
        # Only this stack's double's containers: another clone's stack may be running pods right now.
        out = subprocess.run(
            [
                "podman",
                "ps",
                "-a",
                "-q",
                "--filter",
                f"label=kube-double.local/instance={state.get('instance')}",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        return out.stdout.split()

    def processes_left(self, wait: float = 15) -> list[str]:
        """Host processes a pod left behind: anything running in a pod work dir of the kubelet, or the
        runner entrypoint (process kubelet; with podman, containers_left covers what runs inside)."""
        deadline = time.monotonic() + wait
        while True:
            left = [str(proc) for proc in local_kube.pod_processes()]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(1)

    def pods_left(self, wait: float = 30) -> list[Any]:
        """Pods (and kubelet-run containers/processes) still present, after a short grace period."""
        deadline = time.monotonic() + wait
        while True:
            with urllib.request.urlopen(f"{self.kube_url}/_double/state", timeout=10) as resp:
                state = json.loads(resp.read())
            left = [p for p in state.get("pods", [])] + list(state.get("running", []))
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(1)


def _is_pod_of(pod_name: str, script: str) -> bool:
    """Whether a pod name is one of ``script``'s (names carry the script path's hash, see pod_spec)."""
    from script_runner.run.pod_spec import path_hash

    return f"-{path_hash(script)}-" in pod_name
