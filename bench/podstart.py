"""Issue 15's goal 5: pod start -> first line of the script, per phase, in the container (podman) kubelet.

Runs N trivial scripts through the DAG (real pods built by our operator, one stack session, the podman
kubelet), then joins three clocks, all wall-clock ms on this host:

- the Kubernetes double's log: ``pod NS/NAME scheduled`` (the node took the pod, right after its creation)
  and ``pod NS/NAME Running`` (``podman run`` started);
- the entrypoint's ``[runner]`` lines: ``event=start … t_ms=`` (its first instruction) and
  ``event=script-start … t_ms= total_ms= phases_ms=lib:N,config:N,auth:N,fetch:N,…`` (just before the
  script starts);
- the script's own first line, ``first line t=<epoch µs>`` (bash's ``EPOCHREALTIME``, no fork);
- and the end line's ``cpu_secs`` (the container's CPU: load-independent, unlike the wall-clock figures).

``python -m bench.podstart [--quick] [--count N]`` prints one JSON object: medians and p95 of each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from bench.e2e import OURS, WORK, run_and_time, session, upload
from local import config
from local.airflow_env import airflow_home

if TYPE_CHECKING:
    from pathlib import Path

IMAGE = os.environ.get("SR_IMAGE", "localhost/script-runner:local")
FIRST_LINE = 'echo "first line t=${EPOCHREALTIME/[.,]/}"'
_KUBE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \S+ INFO pod ([^/\s]+)/(\S+) (scheduled|Running)\b"
)
_START = re.compile(r"\[runner\] .*event=start .*t_ms=(\d+)")
_READY = re.compile(r"\[runner\] .*event=script-start .*t_ms=(\d+) total_ms=(\d+) phases_ms=([a-z0-9:,]+)")
_FIRST = re.compile(r"first line t=(\d+)")
_CPU = re.compile(r"\[runner\] .*event=end .*cpu_secs=([0-9.]+)")
_POD = re.compile(r"Building pod (\S+) with labels")


def write_scripts(count: int) -> Path:
    """``count`` scripts whose first line prints the wall clock in µs."""
    folder = WORK / f"podstart-{count}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"p_{i:03}.sh").write_text(
            f"#!/usr/bin/env bash\n# runner: cpu=50m memory=64Mi retries=0\n{FIRST_LINE}\necho job {i}\n"
        )
    return folder


def kube_marks(text: str) -> dict[str, dict[str, float]]:
    """``{pod name: {"scheduled": epoch ms, "Running": epoch ms}}`` from the double's log (local time)."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = _KUBE.match(line)
        if m:
            when = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) * 1000 + int(m.group(2))
            out.setdefault(m.group(4), {}).setdefault(m.group(5), when)
    return out


def pod_row(task_log: str, kube: dict[str, dict[str, float]]) -> dict[str, Any] | None:
    """One pod's figures (ms) from its task log and the double's marks; None when a mark is missing."""
    pod = _POD.search(task_log)
    start, ready, first = _START.search(task_log), _READY.search(task_log), _FIRST.search(task_log)
    if not (pod and start and ready and first):
        return None
    marks = kube.get(pod.group(1), {})
    t_start, t_ready, t_first = int(start.group(1)), int(ready.group(1)), int(first.group(1)) / 1000
    row: dict[str, Any] = {
        "pod": pod.group(1),
        "entry_to_first_line": t_first - t_start,
        "entry_total": int(ready.group(2)),
        "script_start_to_first_line": t_first - t_ready,
        **{f"phase_{k}": int(v) for k, v in (p.split(":") for p in ready.group(3).split(","))},
    }
    cpu = _CPU.search(task_log)
    if cpu:
        # The container's CPU over its whole life (cgroup): for a one-line script, the entrypoint's own,
        # which the load on the machine does not change (the wall-clock figures above it does).
        row["pod_cpu"] = round(float(cpu.group(1)) * 1000)
    if "scheduled" in marks and "Running" in marks:
        row["created_to_entry"] = t_start - marks["scheduled"]
        row["created_to_container"] = marks["Running"] - marks["scheduled"]
        row["container_to_entry"] = t_start - marks["Running"]
        row["created_to_first_line"] = t_first - marks["scheduled"]
    return row


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and p95 (ms) of every figure over the pods."""
    keys = sorted({k for r in rows for k in r if k != "pod"})
    out: dict[str, Any] = {}
    for key in keys:
        values = [float(r[key]) for r in rows if key in r]
        out[key] = {"median_ms": round(statistics.median(values), 1), "p95_ms": round(_p95(values), 1)}
    return out


def _task_logs(run_id: str) -> list[str]:
    base = airflow_home() / "logs" / f"dag_id={OURS}" / f"run_id={run_id}"
    return [p.read_text(errors="replace") for p in sorted(base.glob("task_id=run_scripts*/**/attempt=1.log"))]


def measure(count: int) -> dict[str, Any]:
    """Run ``count`` trivial scripts on the podman kubelet and summarise their pods' start."""
    folder = write_scripts(count)
    env = {"SR_KUBELET": "podman", "SR_IMAGE": IMAGE, "NAIVE_DATA_DIR": str(WORK / "none")}
    with session(**env) as client:
        mode = (config.RUN / "kube" / "mode").read_text().strip()
        prefix = f"podstart-{count}/"
        upload(folder, prefix)
        client.set_variable(
            "script_runner_settings",
            json.dumps(
                {
                    "source": f"gs://{config.BUCKET}/{prefix}",
                    "state_root": f"e2e-state/bench-{uuid.uuid4().hex[:8]}",
                }
            ),
        )
        client.wait_dag_parsed(OURS, timeout=180)
        load_before = os.getloadavg()[0]
        run = run_and_time(client, OURS, {"rerun": True})
        load_after = os.getloadavg()[0]
        kube = kube_marks((config.LOGS / "kube.log").read_text(errors="replace"))
        rows = [r for r in (pod_row(t, kube) for t in _task_logs(run["run_id"])) if r]
    return {
        "bench": "podstart",
        "kubelet": mode,
        "image": IMAGE,
        "scripts": count,
        "pods_measured": len(rows),
        "run_state": run["state"],
        "wall_s": run["wall_s"],
        "load_avg_1m": [round(load_before, 2), round(load_after, 2)],
        "figures": summarize(rows),
        "pods": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.podstart")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--count", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.count or (4 if args.quick else 20))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
