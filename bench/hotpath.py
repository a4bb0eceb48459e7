"""Goal 1's in-process smoke: what one mapped run task does around its pod, ours vs a bare KPO.

For a first attempt (try 1, never rescheduled), in this process, side by side and interleaved:
- ours: build ``ScriptPodOperator`` from the spec discovery hands over (settings included), hold the plan
  against the current settings (one Variable read: ``run/plan_check.py``), read the attempt history and
  the script's done-marker for the run's interval, build the pod request; after the
  pod, write the done-marker and record the attempt in the ledger (GCS emulator).
- bare: build a ``KubernetesPodOperator`` with the same pod fields and build its pod request.
Also counted: settings Variable reads and GCS requests before and after the pod (the round trips that
wait for CPU when 16 task processes share two cores). The counts are asserted (a regression fails
``make bench-smoke``); times are recorded, as they move with the machine's load.

``python -m bench.hotpath [--quick]`` prints one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dags"))
sys.path.insert(0, str(ROOT))

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]
current-context: x
"""
SPEC = {
    "path": "team1/job_0001.sh",
    "uri": "gs://bench/data/team1/job_0001.sh",
    "generation": "1732450000123456",
    "md5": "XrY7u+Ae7tCTyyK7j1rNww==",
    "cpu": "100m",
    "memory": "64Mi",
    "ephemeral_storage": "1Gi",
    "timeout": 600,
    "start_timeout": 120,
    "retries": 1,
    "retry_delay": 30,
    "image": "localhost/script-runner:local",
}


class FakeTI:
    dag_id, task_id, run_id, try_number, max_tries, map_index = (
        "gcs_script_runner",
        "run_scripts",
        "bench",
        1,
        5,
        0,
    )


def main(quick: bool) -> dict[str, Any]:
    from google.cloud import storage

    from bench.discovery import start_emulator
    from local.gcs_counting import CountingClient

    kubeconfig = Path(tempfile.mkdtemp()) / "config"
    kubeconfig.write_text(KUBECONFIG)
    os.environ["KUBECONFIG"] = str(kubeconfig)
    proc, url = start_emulator()
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

        import script_runner.run.operator as operator_module
        import script_runner.run.plan_check as plan_check_module
        from script_runner.config.settings import settings_to_wire
        from script_runner.config.settings_loader import load_settings
        from script_runner.run.ledger import Ledger
        from script_runner.run.policy import Action, Outcome, Status

        client = storage.Client(project="bench")
        client.create_bucket("bench-state")
        settings = load_settings(
            environ={
                "GCS_BUCKET": "bench",
                "SCRIPT_RUNNER_PRESET": "local",
                "SCRIPT_RUNNER_STATE_BUCKET": "bench-state",
            }
        )
        # The pods would go to this process's made-up cluster (no request is sent while building them).
        settings = settings.model_copy(update={"config_file": str(kubeconfig), "kubernetes_conn_id": None})
        item = {**SPEC, "settings": settings_to_wire(settings)}  # what discovery hands each run task
        variable_reads = 0

        def no_variable() -> Any:
            nonlocal variable_reads
            variable_reads += 1
            return settings

        operator_module.load_settings_from_airflow = no_variable  # type: ignore[assignment]
        plan_check_module.load_settings_from_airflow = no_variable  # type: ignore[assignment]
        counting = CountingClient(client)
        context: dict[str, Any] = {"ti": FakeTI(), "run_id": "bench-0", "task_reschedule_count": 0}
        before_pod = after_pod = 0
        ours_pre: list[float] = []
        ours_post: list[float] = []
        bare: list[float] = []
        # The bare KubernetesPodOperator DAG's task (bench/bare/bare_kpo_e2e_dag.py): a plain pod.
        bare_kwargs = {
            "image": SPEC["image"],
            "cmds": ["bash", "-c", "echo job"],
            "config_file": str(kubeconfig),
            "namespace": settings.namespace,
            "get_logs": True,
            "on_finish_action": "delete_pod",
            "do_xcom_push": False,
            "security_context": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "container_security_context": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        rounds = 10 if quick else 200
        for i in range(rounds + 1):
            context["run_id"] = f"bench-{i}"  # a run of its own each round: one first attempt each
            # ... in an interval of its own (an hourly schedule's), so no round finds another's done-marker
            context["logical_date"] = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i)
            start = time.perf_counter()
            op = operator_module.ScriptPodOperator(task_id="run_scripts", script=item)
            op.__dict__["ledger"] = Ledger(counting, bucket="bench-state", root="script-runner")  # type: ignore[arg-type]
            seen = counting.requests
            op._refuse_untrusted_plan(context)  # the plan (XCom) against the current settings
            history = op._history(context)
            assert op._done_for_interval(context, rerun=False) is False  # a new run: no marker yet
            op.name = f"pod-{i}"
            op.build_pod_request_obj()
            before_pod += counting.requests - seen
            mid = time.perf_counter()
            seen = counting.requests
            op._context = context
            op._mark_done()  # in cleanup, before the pod is deleted
            op._record(context, Outcome(Status.SUCCESS, 0), Action.DONE)
            after_pod += counting.requests - seen
            end = time.perf_counter()
            b0 = time.perf_counter()
            kpo = KubernetesPodOperator(task_id="run_pods", name=f"bare-{i}", **bare_kwargs)
            kpo.build_pod_request_obj()
            b1 = time.perf_counter()
            if i:  # the first round pays imports and caches
                ours_pre.append(mid - start)
                ours_post.append(end - mid)
                bare.append(b1 - b0)
            assert history == []
        attempts = rounds + 1
        row = {
            "rounds": rounds,
            "variable_reads_per_task": variable_reads / attempts,
            "gcs_requests_before_pod": before_pod / attempts,
            "gcs_requests_after_pod": after_pod / attempts,
            "ours_pre_pod_ms": round(statistics.median(ours_pre) * 1000, 2),
            "ours_after_pod_ms": round(statistics.median(ours_post) * 1000, 2),
            "bare_kpo_pre_pod_ms": round(statistics.median(bare) * 1000, 2),
        }
        row["pre_pod_ratio"] = round(row["ours_pre_pod_ms"] / row["bare_kpo_pre_pod_ms"], 2)
        # The contract of goal 1's hot path: one read before the pod (the done-marker, which the Airflow side
        # alone decides since issue 25: no pod can forge it), two writes after a success (marker, ledger).
        # One Variable read: the current settings the plan from XCom is held against (issue 25), never the
        # settings handed over with it; building the operator reads none.
        assert row["variable_reads_per_task"] == 1, row
        assert row["gcs_requests_before_pod"] == 1, row
        assert row["gcs_requests_after_pod"] == 2, row
        return row
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    print(json.dumps(main("--quick" in sys.argv)))
