"""Issue 15's goal 4: one full run of N trivial scripts to completion on the local stack (process kubelet,
deferrable, default settings), with its cost.

Records the wall time (trigger -> run ended), the peak of worker slots held (task instances ``running``)
and of deferred ones (sampled every 2 s through two ``limit=1`` queries, cheap at any N), the CPU seconds
of the scheduler (its own, and with its LocalExecutor workers and their task processes: reaped children
plus live descendants) and of the triggerer and dag-processor, from /proc before and after, the load
average, the report's size (json/md/html bytes) and the per-script cost with the extrapolation to 10 000.

``python -m bench.fullrun [--quick] [--count N]`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import urllib.parse
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.e2e import OURS, WORK, run_and_time, session, upload, write_scripts
from bench.quiet import after as after_run
from bench.quiet import wait_quiet
from local import config
from local.processes import alive

if TYPE_CHECKING:
    from local.airflow_client import AirflowClient

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(c) for c in (task / "children").read_text().split()]
    return out


def cpu_seconds(pid: int) -> dict[str, float]:
    """``self``: the process's own user+system CPU; ``tree``: plus its reaped children and live descendants.

    :param pid: the process.
    """
    fields = _stat(pid)
    own = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    reaped = (int(fields[13]) + int(fields[14])) / _TICK  # cutime, cstime
    tree = own + reaped
    todo = _children(pid)
    while todo:
        child = todo.pop()
        with contextlib.suppress(OSError, ValueError, IndexError):
            f = _stat(child)
            tree += (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / _TICK
            todo += _children(child)
    return {"self": round(own, 1), "tree": round(tree, 1)}


def _components() -> dict[str, dict[str, float]]:
    out = {}
    for name in ("scheduler", "triggerer", "dag-processor"):
        pid = alive(name)
        if pid:
            with contextlib.suppress(OSError, ValueError, IndexError):
                out[name] = cpu_seconds(pid)
    return out


def _poll(client: AirflowClient, stop: threading.Event, out: dict[str, Any]) -> None:
    """Peaks of running (slots held) and deferred task instances over every run of ours, every 2 s."""
    base = f"/api/v2/dags/{OURS}/dagRuns/~/taskInstances"
    load = []
    while not stop.is_set():
        with contextlib.suppress(Exception):
            for state in ("running", "deferred"):
                total = int(client.request("GET", f"{base}?state={state}&limit=1")["total_entries"])
                out[f"peak_{state}"] = max(out.get(f"peak_{state}", 0), total)
            load.append(os.getloadavg()[0])
        stop.wait(2)
    if load:
        out["load_avg_1m"] = {"min": min(load), "max": max(load), "mean": round(sum(load) / len(load), 2)}


def _report_sizes(client_state_root: str, run_id: str) -> dict[str, int]:
    from google.cloud import storage

    bucket = storage.Client(project="test-project").bucket(config.BUCKET)
    out = {}
    for ext in ("json", "md", "html"):
        blob = bucket.get_blob(f"{client_state_root}/reports/{run_id}.{ext}")
        out[ext] = int(blob.size) if blob is not None and blob.size is not None else -1
    return out


def measure(count: int, timeout: float, *, preload: bool = True) -> dict[str, Any]:
    """Run ``count`` trivial scripts to completion (process kubelet, deferrable, default settings).

    :param preload: the worker preload of the KubernetesPodOperator (local/preload; issue 26 goal 4 is
        measured with it, as a Composer environment with it in its ``airflow_local_settings.py``).
    """
    folder = write_scripts(count, name="fullrun")
    env = {"SR_KUBELET": "process", "NAIVE_DATA_DIR": str(WORK / "none")}
    if preload:
        env["SR_PRELOAD_PROVIDERS"] = "1"
    with session(**env) as client:
        prefix = f"bench-full-{count}/"
        upload(folder, prefix)
        state_root = f"e2e-state/bench-{uuid.uuid4().hex[:8]}"
        client.set_variable(
            "script_runner_settings",
            json.dumps(
                {"source": f"gs://{config.BUCKET}/{prefix}", "state_root": state_root, "deferrable": True}
            ),
        )
        client.wait_dag_parsed(OURS, timeout=180)
        seen = wait_quiet()  # issue 26 goal 5: the timed run starts on a quiet machine
        before = _components()
        peaks: dict[str, Any] = {}
        stop = threading.Event()
        poller = threading.Thread(target=_poll, args=(client, stop, peaks), daemon=True)
        poller.start()
        row = run_and_time(client, OURS, {"rerun": True}, timeout=timeout)
        stop.set()
        poller.join(timeout=10)
        after = _components()
        quoted = urllib.parse.quote(row["run_id"])
        discover = client.request("GET", f"/api/v2/dags/{OURS}/dagRuns/{quoted}/taskInstances/discover")
        report = client.request("GET", f"/api/v2/dags/{OURS}/dagRuns/{quoted}/taskInstances/report")
        sizes = _report_sizes(state_root, row["run_id"])
    cpu = {
        name: {k: round(after[name][k] - before[name][k], 1) for k in ("self", "tree")}
        for name in after
        if name in before
    }
    per_script = row["wall_s"] / count
    return {
        "bench": "fullrun",
        "kubelet": "process",
        "deferrable": True,
        "preload": preload,
        "settings": "defaults (shards, max_map_length, parallelism)",
        **row,
        "scripts": count,
        "discover_s": discover.get("duration"),
        "report_s": report.get("duration"),
        "report_state": report.get("state"),
        **peaks,
        **{k: v for k, v in after_run(seen).items() if k != "load_avg_1m"},
        "cpu_s": cpu,
        # Airflow's side: scheduler (with its executor's task processes), triggerer and dag-processor.
        "airflow_cpu_per_script_s": round(sum(c["tree"] for c in cpu.values()) / count, 3),
        "report_bytes": sizes,
        "wall_per_script_s": round(per_script, 3),
        "scheduler_cpu_per_script_ms": round(1000 * cpu.get("scheduler", {}).get("self", 0) / count, 1),
        "extrapolated_10000_h": round(per_script * 10_000 / 3600, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fullrun")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument("--no-preload", action="store_true", help="without the worker preload")
    args = parser.parse_args(argv)
    count = args.count or (10 if args.quick else 1000)
    print(json.dumps(measure(count, args.timeout, preload=not args.no_preload)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
