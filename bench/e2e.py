"""Benchmarks 3-5 on the local stack with the real scheduler and LocalExecutor.

3. ``compare``: N trivial scripts, ours (one pod each through the Kubernetes double) vs the naive
   BashOperator DAG, in the same stack session, alternating, repeated; per kubelet mode.
4. ``deferrable``: with 4 worker slots (executor parallelism) and M scripts that sleep S seconds each,
   sync vs deferrable: how many pods run at once and how many worker slots are held meanwhile.
5. ``shards``: past ``max_map_length`` with shards (scaled down: max_map_length lowered so the run stays
   small on this machine; the mechanism is the same at 1 024): all scripts launched and reported; and past
   the capacity, a clear error before launch. A plain mapped DAG over the same list fails the run.

``python -m bench.e2e compare|deferrable|shards [--quick]`` prints one JSON object per measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.quiet import after as after_run
from bench.quiet import wait_quiet
from local import config, stack
from local.airflow_client import AirflowClient
from local.kube_double.control import call

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".run" / "e2e"
OURS, NAIVE, OVERFLOW, BARE_KPO = "gcs_script_runner", "naive_bash_scripts", "bare_overflow", "bare_kpo_pods"


@contextlib.contextmanager
def session(**env: str) -> Iterator[AirflowClient]:
    """A fresh stack with these environment settings (ours, the naive and the overflow DAG side by side)."""
    dags = WORK / "dags"
    shutil.rmtree(dags, ignore_errors=True)
    dags.mkdir(parents=True)
    shutil.copy(ROOT / "dags" / "gcs_script_runner.py", dags)
    shutil.copy(ROOT / "bench" / "baseline" / "naive_dag.py", dags)
    shutil.copy(ROOT / "bench" / "bare" / "overflow_dag.py", dags)
    shutil.copy(ROOT / "bench" / "bare" / "bare_kpo_e2e_dag.py", dags)
    saved = dict(os.environ)
    os.environ.update({"SR_DAGS_FOLDER": str(dags), **env})
    stack.down()
    try:
        stack.up()
        os.environ["STORAGE_EMULATOR_HOST"] = config.gcs_url()
        yield AirflowClient(f"http://127.0.0.1:{config.PORTS.airflow}")
    finally:
        stack.down()
        os.environ.clear()
        os.environ.update(saved)


def write_scripts(count: int, *, sleep: float = 0, name: str = "") -> Path:
    folder = WORK / f"{name or 'data'}-{count}-{sleep:g}"
    shutil.rmtree(folder, ignore_errors=True)
    for i in range(count):
        path = folder / f"team{i % 5}" / f"job_{i:04}.sh"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = f"sleep {sleep:g}\n" if sleep else ""
        path.write_text(f"#!/usr/bin/env bash\n# runner: cpu=50m memory=64Mi retries=0\n{body}echo job {i}\n")
    return folder


def upload(folder: Path, prefix: str, *, threads: int = 16) -> None:
    """Copy every script of ``folder`` under ``prefix`` in the bucket (concurrently: 10 000 at scale)."""
    from concurrent.futures import ThreadPoolExecutor

    from google.cloud import storage

    bucket = storage.Client(project="test-project").bucket(config.BUCKET)

    def put(path: Path) -> None:
        bucket.blob(prefix + path.relative_to(folder).as_posix()).upload_from_filename(str(path))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, sorted(folder.rglob("*.sh"))))


def _use_source(client: AirflowClient, prefix: str, **settings: Any) -> None:
    """Point the runner at ``prefix`` of the stack's bucket, with a fresh pod-writable state root per run.

    :param client: the stack's Airflow.
    :param prefix: the uploaded scripts' prefix.
    :param settings: more runner settings (e.g. ``deferrable``).
    """
    state_root = f"e2e-state/bench-{uuid.uuid4().hex[:8]}"
    value = {"source": f"gs://{config.BUCKET}/{prefix}", "state_root": state_root, **settings}
    client.set_variable("script_runner_settings", json.dumps(value))


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def run_and_time(
    client: AirflowClient, dag_id: str, conf: dict[str, Any], timeout: float = 1800
) -> dict[str, Any]:
    """Trigger, wait (polling every 0.5 s), and summarise the run from its task instances."""
    from bench import cpu

    client.unpause(dag_id)
    pids = cpu.stack_pids(config.PIDS)
    _kube_requests("DELETE")
    cpu_before = cpu.snapshot(pids)
    start = time.monotonic()
    run_id = client.trigger_dag(dag_id, conf)
    deadline = start + timeout
    state = ""
    while time.monotonic() < deadline:
        state = client.dag_run(dag_id, run_id)["state"]
        if state in ("success", "failed"):
            break
        time.sleep(0.5)
    wall = time.monotonic() - start
    cpu_s = cpu.split(cpu_before, cpu.snapshot(pids))
    kube_requests = _kube_requests("GET")
    tis = client.task_instances(dag_id, run_id)
    work = [t for t in tis if t["task_id"].startswith(("run_scripts", "run_"))]
    starts = sorted(s for s in (_ts(t.get("start_date")) for t in work) if s)
    ends = [e for e in (_ts(t.get("end_date")) for t in work) if e]
    run_info = client.dag_run(dag_id, run_id)
    durations = [float(t["duration"]) for t in work if t.get("duration") is not None]
    states: dict[str, int] = {}
    for t in work:
        states[str(t["state"])] = states.get(str(t["state"]), 0) + 1
    # The run's other tasks (discovery, the report; the bare DAG's list): they run alone, before and after
    # the mapped ones, so their time adds to the wall time as it is, whatever the CPU does.
    others = {
        str(t["task_id"]): t.get("duration")
        for t in tis
        if t not in work and t.get("map_index", -1) in (-1, None) and t.get("duration") is not None
    }
    return {
        "dag": dag_id,
        "run_id": run_id,
        "state": state,
        "wall_s": round(wall, 1),
        "tasks": len(work),
        "task_states": states,
        "first_to_last_start_s": round(starts[-1] - starts[0], 1) if starts else None,
        "median_task_s": round(statistics.median(durations), 2) if durations else None,
        "other_tasks_s": {task: round(float(seconds or 0), 2) for task, seconds in sorted(others.items())},
        # The serial edges: the run's start to its first mapped task's, the last one's end to the run's
        "head_s": _gap(run_info.get("start_date"), starts[0] if starts else None),
        "tail_s": _gap(max(ends) if ends else None, run_info.get("end_date")),
        # CPU seconds of the run per part of the stack (bench/cpu.py): ``airflow`` is Composer's side
        "cpu_s": cpu_s,
        # Kubernetes API calls of the run by route (the double's tally): what each task asks of the API
        "kube_requests": {key: value["count"] for key, value in kube_requests.items()},
    }


def _gap(start: str | float | None, end: str | float | None) -> float | None:
    """Seconds from ``start`` to ``end`` (ISO strings or epoch seconds), None when either is missing."""
    first = _ts(start) if isinstance(start, str) else start
    last = _ts(end) if isinstance(end, str) else end
    return round(last - first, 2) if first is not None and last is not None else None


def _kube_requests(method: str) -> dict[str, Any]:
    """The Kubernetes double's request tally (``DELETE`` reads it and starts again); {} when unanswered."""
    try:
        counted: dict[str, Any] = call(
            f"http://127.0.0.1:{config.PORTS.kube}", method, "/_double/requests", timeout=10
        )
    except OSError:
        return {}
    return counted or {}


def compare(
    count: int,
    repeats: int,
    kubelet: str,
    *,
    preload: bool = False,
    deferrable: bool = False,
    naive: bool = True,
) -> list[dict[str, Any]]:
    """Benchmark 3: ours vs the naive DAG and a bare KubernetesPodOperator DAG, same stack, alternating.

    ``preload``: the Airflow processes import the KubernetesPodOperator at start (local/preload), so the
    forked task processes inherit it instead of importing it each (3b: what a worker-side preload buys).
    ``deferrable``: ours and the bare KPO DAG both run their pods deferrable. ``naive``: include the naive
    BashOperator DAG.
    """
    folder = write_scripts(count)
    rows: list[dict[str, Any]] = []
    env = {"SR_KUBELET": kubelet, "NAIVE_DATA_DIR": str(folder), "BARE_KPO_ITEMS": str(count)}
    if preload:
        env["SR_PRELOAD_PROVIDERS"] = "1"
    if deferrable:
        env["BARE_KPO_DEFERRABLE"] = "1"
    with session(**env) as client:
        mode = (
            (config.RUN / "kube" / "mode").read_text().strip()
            + ("+preload" if preload else "")
            + ("+deferrable" if deferrable else "")
        )
        prefix = f"bench-{count}/"
        upload(folder, prefix)
        _use_source(client, prefix, deferrable=deferrable)
        client.wait_dag_parsed(OURS, timeout=180)
        client.wait_dag_parsed(NAIVE, timeout=180)
        client.wait_dag_parsed(BARE_KPO, timeout=180)
        dags = [(OURS, {"rerun": True}), *([(NAIVE, {})] if naive else []), (BARE_KPO, {})]
        for repeat in range(repeats):
            for dag_id, conf in run_order(dags, repeat):
                seen = wait_quiet()  # issue 26 goal 5: each timed run starts on a quiet machine
                row = run_and_time(client, dag_id, conf)
                row.update(kubelet=mode, scripts=count, **after_run(seen))
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def run_order(dags: list[Any], repeat: int) -> list[Any]:
    """The DAGs of one repeat in the order they run: as given, then reversed every other repeat, so no DAG
    always takes the first run of a fresh stack (repeats 1.50x and 1.18x apart when ours always did).

    :param dags: the DAGs (with their conf) in the first repeat's order.
    :param repeat: the repeat's number, from 0.
    """
    return list(dags) if repeat % 2 == 0 else list(reversed(dags))


def _poll_concurrency(client: AirflowClient, dag_id: str, stop: threading.Event, out: dict[str, Any]) -> None:
    """Sample pods and task states twice a second.

    ``own_slot``: a pod is Running while its own task instance holds a worker slot (state ``running``);
    in deferrable mode the task is ``deferred`` then and holds none. The share of Running-pod samples with
    their own slot held is the headline (sync: ~100 %, deferrable: only the launch/collect edges).
    """
    kube = f"http://127.0.0.1:{config.PORTS.kube}/_double/state"
    pod_samples = own_slot_samples = 0
    while not stop.is_set():
        with contextlib.suppress(Exception):
            with urllib.request.urlopen(kube, timeout=5) as resp:
                pods = [p for p in json.loads(resp.read())["pods"] if p["phase"] == "Running"]
            runs = client.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-start_date&limit=1")
            run_id = runs["dag_runs"][0]["dag_run_id"]
            tis = [t for t in client.task_instances(dag_id, run_id) if t["task_id"].startswith("run_scripts")]
            state = {(t["task_id"], str(t.get("map_index"))): t["state"] for t in tis}
            running = sum(1 for t in tis if t["state"] == "running")
            deferred = sum(1 for t in tis if t["state"] == "deferred")
            own = sum(
                1
                for p in pods
                if state.get((p["labels"].get("task_id", ""), p["labels"].get("map_index", ""))) == "running"
            )
            pod_samples += len(pods)
            own_slot_samples += own
            out["max_pods_running"] = max(out.get("max_pods_running", 0), len(pods))
            if pods:
                out["max_slots_held_while_pods_run"] = max(
                    out.get("max_slots_held_while_pods_run", 0), running
                )
            out["max_pods_running_with_own_slot"] = max(out.get("max_pods_running_with_own_slot", 0), own)
            out["max_deferred"] = max(out.get("max_deferred", 0), deferred)
        time.sleep(0.5)
    out["pod_samples"] = pod_samples
    out["own_slot_share"] = round(own_slot_samples / pod_samples, 3) if pod_samples else None


def deferrable(count: int, sleep: float, slots: int) -> list[dict[str, Any]]:
    """Benchmark 4: sync vs deferrable with ``slots`` worker slots."""
    folder = write_scripts(count, sleep=sleep, name="sleepers")
    rows: list[dict[str, Any]] = []
    with session(SR_KUBELET="process", SR_PARALLELISM=str(slots), NAIVE_DATA_DIR=str(folder)) as client:
        prefix = f"bench-sleep-{count}/"
        upload(folder, prefix)
        client.wait_dag_parsed(OURS, timeout=180)
        for mode in (False, True):
            _use_source(client, prefix, deferrable=mode)
            seen: dict[str, Any] = {}
            stop = threading.Event()
            poller = threading.Thread(target=_poll_concurrency, args=(client, OURS, stop, seen), daemon=True)
            poller.start()
            row = run_and_time(client, OURS, {"rerun": True})
            stop.set()
            poller.join(timeout=10)
            row.update(seen, deferrable=mode, scripts=count, sleep_s=sleep, worker_slots=slots)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def shards(count_ok: int, count_over: int, max_map: int, shard_count: int) -> list[dict[str, Any]]:
    """Benchmark 5 (scaled): sharded mapping past max_map_length, and the error past capacity."""
    rows: list[dict[str, Any]] = []
    env = {
        "SR_KUBELET": "process",
        "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max_map),
        "SCRIPT_RUNNER_SHARDS": str(shard_count),
        "OVERFLOW_ITEMS": str(count_ok),
        "NAIVE_DATA_DIR": str(WORK / "none"),
    }
    with session(**env) as client:
        for count in (count_ok, count_over):
            folder = write_scripts(count, name="shards")
            prefix = f"bench-shards-{count}/"
            upload(folder, prefix)
            _use_source(client, prefix)
            client.wait_dag_parsed(OURS, timeout=180)
            row = run_and_time(client, OURS, {"rerun": True})
            report = _report(row["run_id"])
            discover_log = ""
            if count > max_map * shard_count:
                discover_log = client.task_log(OURS, row["run_id"], "discover", -1, 1)
            row.update(
                scripts=count,
                max_map_length=max_map,
                shards=shard_count,
                capacity=max_map * shard_count,
                reported=report.get("summary", {}),
                discovery_error=report.get("summary", {}).get("discovery", ""),
                error_before_launch=(
                    "TooManyScriptsError" in discover_log
                    and "do not fit" in str(report.get("summary", {}).get("discovery", ""))
                    and not row["task_states"].get("success")
                )
                if discover_log
                else None,
            )
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
        client.wait_dag_parsed(OVERFLOW, timeout=180)
        row = run_and_time(client, OVERFLOW, {})
        row.update(scripts=count_ok, max_map_length=max_map, note="plain mapped DAG over the same count")
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def scale(count: int, shard_count: int, timeout: float = 900) -> list[dict[str, Any]]:
    """Benchmark 5 at full size: ``count`` scripts, Airflow's default max_map_length, ``shard_count`` shards.

    Measures discovery and the expansion of every mapped task instance (the step that fails a plain mapped
    DAG past 1 024). Running every pod is not measured here (10 000 pods at ~0.5 s of CPU each would take
    hours on two cores): once all instances exist the run is stopped, and the stop must leave no pod.
    """
    folder = write_scripts(count, name="scale")
    env = {
        "SR_KUBELET": "process",
        "SCRIPT_RUNNER_SHARDS": str(shard_count),
        "NAIVE_DATA_DIR": str(WORK / "none"),
    }
    with session(**env) as client:
        prefix = f"bench-scale-{count}/"
        upload(folder, prefix)
        _use_source(client, prefix)
        client.wait_dag_parsed(OURS, timeout=180)
        client.unpause(OURS)
        start = time.monotonic()
        run_id = client.trigger_dag(OURS, {"rerun": True})
        quoted = urllib.parse.quote(run_id)
        base = f"/api/v2/dags/{OURS}/dagRuns/{quoted}/taskInstances"
        fixed = 1 + (shard_count - 1) + 1  # discover, shard_1.., report
        expanded_at = None
        total = 0
        discover_state = ""
        while time.monotonic() - start < timeout:
            total = int(client.request("GET", f"{base}?limit=1")["total_entries"])
            discover_state = str(client.request("GET", f"{base}/discover").get("state"))
            if total - fixed >= count:
                expanded_at = time.monotonic() - start
                break
            if discover_state in ("failed", "upstream_failed"):
                break
            time.sleep(1)
        discover_ti = client.request("GET", f"{base}/discover")
        client.request("PATCH", f"/api/v2/dags/{OURS}/dagRuns/{quoted}", {"state": "failed"})
        kube = f"http://127.0.0.1:{config.PORTS.kube}/_double/state"
        deadline = time.monotonic() + 180
        left: list[Any] = []
        while time.monotonic() < deadline:
            with urllib.request.urlopen(kube, timeout=10) as resp:
                state = json.loads(resp.read())
            left = state["pods"] + state["running"]
            if not left:
                break
            time.sleep(2)
        row = {
            "dag": OURS,
            "scripts": count,
            "shards": shard_count,
            "max_map_length": "1024 (default)",
            "discover_state": discover_state,
            "discover_s": discover_ti.get("duration"),
            "mapped_instances": max(0, total - fixed),
            "all_expanded_after_s": None if expanded_at is None else round(expanded_at, 1),
            "pods_left_after_stop": len(left),
            "note": "run stopped once every instance existed; pods not all run (hours on 2 cores)",
        }
        print(json.dumps(row), flush=True)
        return [row]


def _report(run_id: str) -> dict[str, Any]:
    from google.cloud import storage

    client = storage.Client(project="test-project")
    for blob in client.list_blobs(config.BUCKET, prefix="e2e-state/bench-"):
        if blob.name.endswith(f"/reports/{run_id}.json"):
            return json.loads(blob.download_as_bytes())  # type: ignore[no-any-return]
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e")
    parser.add_argument("which", choices=["compare", "deferrable", "shards", "scale"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--kubelet", default="process", choices=["process", "podman"])
    parser.add_argument("--preload", action="store_true", help="compare: Airflow preloads the KPO (3b)")
    parser.add_argument("--deferrable", action="store_true", help="compare: ours and bare KPO deferrable")
    parser.add_argument("--no-naive", action="store_true", help="compare: ours and bare KPO only")
    parser.add_argument("--repeats", type=int, default=0, help="compare: runs of each DAG (default 3)")
    args = parser.parse_args(argv)
    if args.which == "compare":
        count, repeats = (10, 1) if args.quick else (100, 3)
        result = compare(
            count,
            args.repeats or repeats,
            args.kubelet,
            preload=args.preload,
            deferrable=args.deferrable,
            naive=not args.no_naive,
        )
    elif args.which == "deferrable":
        result = deferrable(8 if args.quick else 50, 5 if args.quick else 20, 4)
    elif args.which == "scale":
        result = scale(1200 if args.quick else 10_000, 2 if args.quick else 10)
    else:
        result = shards(30 if args.quick else 180, 50 if args.quick else 250, 10 if args.quick else 50, 4)
    WORK.mkdir(parents=True, exist_ok=True)
    suffix = ("-preload" if args.preload else "") + ("-deferrable" if args.deferrable else "")
    (WORK / f"{args.which}-{args.kubelet}{suffix}.json").write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
