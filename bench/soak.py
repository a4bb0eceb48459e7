"""The soak (issue 12): many scripts with faults mixed in, several runs back to back, sync and deferrable.

``python -m bench.soak [--scripts 200] [--runs 4] [--quick]`` (``make soak``) starts a fresh local stack
(process kubelet, providers preloaded), then runs the DAG ``--runs`` times, alternating sync and
deferrable, over the same scripts. About 10 % are OOM-killed once (``oom_retry``), 10 % evicted once, ~5 %
of the pod creations and pod reads answer 5xx, and 2 % are marked failed by a user while they run. After
each run it counts what must be zero: pods and pod processes left (orphans), scripts that ran twice in the
run (by the ledger's successes and by the marker each run of a script writes), scripts whose report row is
missing, and Airflow tries lost to scheduler races (from the scheduler's log) that cost a script retry.
Results: ``bench/results/soak.json`` and ``bench/SOAK.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from local import config, stack
from local.kube import pod_processes
from local.kube_double.control import call as double_call

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".run" / "soak"
DAG_ID = "gcs_script_runner"
MARKER = "SOAK ran"  # the notify message a script writes when it ran to its end
# What each kind of script's attempt ledger reads when no try is lost. A lost try may take a record with
# it (informational: "other unexpected attempts"); a retry is spent only per ``spent_a_retry``.
EXPECTED = {
    "plain": ["success"],
    "oom": ["oom_killed", "success"],
    "evict": ["evicted", "success"],
    "cancel": ["cancelled"],
}
LOST_TRY = "finished with state success, but the task instance's state attribute"


def kind_of(index: int) -> str:
    """The fault a script gets, by its index: 10 % OOM, 10 % eviction, 2 % cancelled, the rest plain."""
    if index % 10 == 0:
        return "oom"
    if index % 10 == 1:
        return "evict"
    if index % 50 == 2:
        return "cancel"
    return "plain"


def script_text(index: int) -> str:
    """One soak script: its directives by kind, a short sleep, and the end-of-run marker."""
    directives = {
        "plain": "",
        "oom": " oom_retry=true fault=oom,after=1,times=1",
        "evict": " fault=evict,after=1,times=1",
        "cancel": "",
    }[kind_of(index)]
    work = (
        "for _ in $(seq 1 300); do sleep 1; done" if kind_of(index) == "cancel" else f"sleep {1 + index % 3}"
    )
    return (
        "#!/usr/bin/env bash\n"
        f"# runner: cpu=50m memory=64Mi timeout=10m retries=1{directives}\n"
        "set -Eeuo pipefail\n"
        'source "${RUNNER_LIB}"\n'
        f'echo "soak script {index} begins pid=$$"\n'
        f"{work}\n"
        f'notify info "{MARKER}"\n'
    )


def write_scripts(count: int) -> dict[str, str]:
    """The scripts under WORK/data; returns each path's kind."""
    folder = WORK / "data"
    kinds = {}
    for index in range(count):
        path = f"team{index % 4}/job_{index:04}.sh"
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(script_text(index))
        kinds[path] = kind_of(index)
    return kinds


def _double(method: str, path: str, body: Any = None) -> Any:
    return double_call(f"http://127.0.0.1:{config.PORTS.kube}", method, path, body)


def _canceller(client: Any, run_id: str, targets: set[str], stop: threading.Event, out: list[str]) -> None:
    """Mark each target script's task failed once its pod runs (what a user does in the UI)."""
    from script_runner.run.pod_spec import path_hash

    left = {f"-{path_hash(p)}-": p for p in targets}
    while left and not stop.is_set():
        try:
            running = {p["name"] for p in _double("GET", "/_double/state")["pods"] if p["phase"] == "Running"}
            tis = {t.get("rendered_map_index"): t for t in client.task_instances(DAG_ID, run_id)}
            for marker, path in list(left.items()):
                ti = tis.get(path)
                if ti and ti["state"] in ("running", "deferred") and any(marker in name for name in running):
                    time.sleep(2)  # the script is under way (its first lines out)
                    client.set_task_state(DAG_ID, run_id, ti["task_id"], ti["map_index"], "failed")
                    out.append(path)
                    del left[marker]
        except Exception as exc:  # a busy API server: try again on the next round
            print(f"[soak] canceller: {exc}", flush=True)
        time.sleep(2)


def _pods_created(since: str) -> int:
    """Pods the double scheduled since ``since`` (RFC 3339), from their events (which outlive the pods)."""
    events = _double("GET", "/api/v1/events")["items"]
    return sum(1 for e in events if e.get("reason") == "Scheduled" and str(e.get("firstTimestamp")) >= since)


def _left_processes() -> list[str]:
    return [str(proc.pid) for proc in pod_processes()]


def measure(run_id: str, state_root: str, kinds: dict[str, str], client: Any) -> dict[str, Any]:
    """What must be zero after a run (see the module docstring), with the scripts behind each count."""
    from google.cloud import storage

    gcs = storage.Client(project="test-project")
    bucket = gcs.bucket(config.BUCKET)
    deadline = time.monotonic() + 30  # a deleted pod takes its grace period to go
    while True:
        state = _double("GET", "/_double/state")
        pods, procs = state["pods"] + state["running"], _left_processes()
        if (not pods and not procs) or time.monotonic() > deadline:
            break
        time.sleep(1)
    from script_runner.run.ledger import Ledger

    ledger = Ledger(gcs, bucket=config.BUCKET, root=state_root)  # its layout is the Ledger's business
    ledger_twice, marker_twice, unexpected, spent = [], [], [], []
    for path, kind in kinds.items():
        records = ledger.read(run_id, path)
        statuses = [r["status"] for r in records]
        if statuses.count("success") > 1:
            ledger_twice.append(path)
        if statuses != EXPECTED[kind]:
            unexpected.append(f"{path} ({kind}): {statuses}")
        if spent_a_retry(kind, records):
            spent.append(path)
        events = gcs.list_blobs(config.BUCKET, prefix=f"{state_root}/events/{run_id}/{path}/")
        if sum(MARKER in blob.download_as_text() for blob in events) > 1:
            marker_twice.append(path)
    report_blob = bucket.blob(f"{state_root}/reports/{run_id}.json")
    rows = (
        {r["path"]: r for r in json.loads(report_blob.download_as_bytes())["scripts"]}
        if report_blob.exists()
        else {}
    )
    missing = sorted(set(kinds) - set(rows))
    tis = {t.get("rendered_map_index"): t for t in client.task_instances(DAG_ID, run_id)}
    log = (config.LOGS / "scheduler.log").read_text(errors="replace").splitlines()
    lost = sorted(
        path
        for path, ti in tis.items()
        if path in kinds
        and any(f"{run_id} map_index={ti['map_index']} [" in ln and LOST_TRY in ln for ln in log)
    )
    costly = [path for path in spent if path in lost]
    return {
        "orphan_pods": len(pods),
        "orphan_processes": len(procs),
        "ran_twice_by_ledger": ledger_twice,
        "ran_twice_by_marker": marker_twice,
        "report_complete": bool(rows) and not missing,
        "report_missing_rows": missing,
        "report_summary": json.loads(report_blob.download_as_bytes())["summary"] if rows else None,
        "tries_lost_to_scheduler_races": lost,
        "lost_tries_that_cost_a_retry": costly,
        "retries_spent_beyond_the_fault": spent,
        "unexpected_ledgers": unexpected,
    }


def spent_a_retry(kind: str, records: list[dict[str, Any]]) -> bool:
    """Whether a script's run spent one of its retries that its injected fault does not explain.

    The operator numbers a script's attempts by the failures its ledger counts (``counted_failures``),
    not by Airflow's try number, so a try the scheduler lost costs a retry only if it left a counted
    failure behind (a script that ended failed counts that failure too). A lost try that merely took an
    attempt's record with it (an eviction no one recorded, then one success) spent nothing: the script
    ran once and kept its retries.

    :param kind: the script's fault kind (a key of ``EXPECTED``).
    :param records: the script's attempt records in this run, oldest first.
    """
    from script_runner.run.policy import counted_failures

    return counted_failures(records) > counted_failures([{"status": s} for s in EXPECTED[kind]])


def soak_run(
    client: Any, number: int, *, deferrable: bool, kinds: dict[str, str], prefix: str
) -> dict[str, Any]:
    """One DAG run with the faults armed; its measurements."""
    state_root = f"soak/{uuid.uuid4().hex[:8]}"
    settings = {
        "source": f"gs://{config.BUCKET}/{prefix}",
        "state_root": state_root,
        "deferrable": deferrable,
    }
    client.set_variable("script_runner_settings", json.dumps(settings))
    five = max(1, math.ceil(len(kinds) * 0.05))
    _double(
        "POST",
        "/_double/faults",
        [
            {"fault": "api_error", "status": 500, "method": "POST", "path": "*/pods", "count": five},
            {"fault": "api_error", "status": 503, "method": "GET", "path": "*/pods/sr-*", "count": five},
        ],
    )
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    started = time.monotonic()
    run_id = client.trigger_dag(DAG_ID, {"rerun": True})
    stop, cancelled = threading.Event(), list[str]()
    targets = {p for p, k in kinds.items() if k == "cancel"}
    watcher = threading.Thread(
        target=_canceller, args=(client, run_id, targets, stop, cancelled), daemon=True
    )
    watcher.start()
    try:
        state = client.wait_dag_run(DAG_ID, run_id, timeout=1800)
    finally:
        stop.set()
        watcher.join(timeout=10)
    wall = round(time.monotonic() - started, 1)
    faults_left = [rule.get("count") for rule in _double("GET", "/_double/faults")]
    _double("DELETE", "/_double/faults")
    row = {
        "run": number,
        "mode": "deferrable" if deferrable else "sync",
        "run_id": run_id,
        "state": state,
        "wall_s": wall,
        "scripts": len(kinds),
        "kinds": {k: sum(1 for v in kinds.values() if v == k) for k in EXPECTED},
        "cancelled_by_the_soak": len(cancelled),
        "api_5xx_left_unserved": faults_left,
        **measure(run_id, state_root, kinds, client),
        "pods_created": _pods_created(since),
    }
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--scripts", type=int, default=200)
    parser.add_argument("--runs", type=int, default=4, help="alternating sync and deferrable, sync first")
    parser.add_argument(
        "--deferrable-first", action="store_true", help="begin with a deferrable run (--runs 1: only that)"
    )
    parser.add_argument("--quick", action="store_true", help="20 scripts, 2 runs: a check of the soak itself")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak.json"))
    parser.add_argument(
        "--note",
        default="a shared machine: other work ran beside the soak (load in 'load')",
        help="what else ran on the machine, for the results page",
    )
    args = parser.parse_args(argv)
    count, runs = (20, 2) if args.quick else (args.scripts, args.runs)
    from bench.e2e import upload
    from bench.run import machine
    from local.airflow_client import AirflowClient

    kinds = write_scripts(count)
    os.environ.update({"SR_KUBELET": "process", "SR_PRELOAD_PROVIDERS": "1"})
    stack.down()
    began = time.monotonic()
    rows = []
    try:
        stack.up()
        os.environ["STORAGE_EMULATOR_HOST"] = config.gcs_url()
        client = AirflowClient(f"http://127.0.0.1:{config.PORTS.airflow}")
        prefix = f"soak-{count}/"
        upload(WORK / "data", prefix)
        client.wait_dag_parsed(DAG_ID, timeout=180)
        client.unpause(DAG_ID)
        for number in range(1, runs + 1):
            deferrable = (number % 2 == 0) != args.deferrable_first
            rows.append(soak_run(client, number, deferrable=deferrable, kinds=kinds, prefix=prefix))
    finally:
        stack.down()
    result = {
        "machine": machine(),
        "note": args.note,
        "load": os.getloadavg(),
        "total_s": round(time.monotonic() - began, 1),
        "runs": rows,
    }
    if not args.quick:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        from bench.soak_render import render

        (ROOT / "bench" / "SOAK.md").write_text(render(result))
    bad = [r for r in rows if not _clean(r)]
    print(
        f"[soak] {len(rows)} run(s) in {result['total_s']} s; {len(bad)} with something non-zero", flush=True
    )
    return 1 if bad else 0


def _clean(row: dict[str, Any]) -> bool:
    return not (
        row["orphan_pods"]
        or row["orphan_processes"]
        or row["ran_twice_by_ledger"]
        or row["ran_twice_by_marker"]
        or not row["report_complete"]
        or row["lost_tries_that_cost_a_retry"]
        or row.get("retries_spent_beyond_the_fault")
    )


if __name__ == "__main__":
    raise SystemExit(main())
