"""CPU seconds a timed run cost, per part of the local stack (read from the stack's pid files).

On this machine Kubernetes, the pods and the Google doubles share the cores with Airflow; on Composer the
pods run on the cluster's nodes and the API servers are Google's. A run's wall time here follows the CPU
of everything (the cores are busy throughout a 100-script run), so a comparison of wall times also compares
our pods' own work (the entrypoint's token, fetch, checksum and syntax check) against a bare ``echo``.
:func:`split` keeps the parts apart: ``airflow`` (scheduler with its workers and task processes, API server,
DAG processor, triggerer, PostgreSQL) is what a Composer environment's Airflow side pays.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

AIRFLOW_PARTS = ("scheduler", "api-server", "dag-processor", "triggerer", "triggerer-2", "postgres")
GOOGLE_PARTS = ("gcs", "iam", "pubsub")
KUBE = "kube"
_TICKS = os.sysconf("SC_CLK_TCK")


def machine_seconds(stat: Path = Path("/proc/stat")) -> float:
    """The machine's busy CPU seconds since boot (user, nice, system, irq, softirq, steal)."""
    fields = [int(v) for v in stat.read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS


def _process_seconds(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of ``pid`` and every live descendant (0s when gone)."""
    import psutil

    try:
        top = psutil.Process(pid)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0.0
    own = children = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        own += times.user + times.system
        children += times.children_user + times.children_system
    return own, children


def snapshot(
    pids: dict[str, int], *, seconds: Callable[[int], tuple[float, float]] = _process_seconds
) -> dict[str, Any]:
    """CPU seconds so far of each part in ``pids`` (own and reaped children's) and of the machine."""
    return {"machine": machine_seconds(), "parts": {name: seconds(pid) for name, pid in pids.items()}}


def stack_pids(folder: Path) -> dict[str, int]:
    """The stack's parts by name, from its pid files (``NAME.pid``: the pid first)."""
    out = {}
    for path in sorted(folder.glob("*.pid")):
        try:
            out[path.stem] = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return out


def _sum(parts: dict[str, tuple[float, float]], names: Iterable[str]) -> float:
    return sum(sum(parts[n]) for n in names if n in parts)


def split(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """CPU seconds between two snapshots: ``airflow``, ``pods`` (what the Kubernetes double's kubelet
    reaped: the pods' processes), ``kube_api`` (the double itself), ``google`` (GCS, IAM, Pub/Sub doubles)
    and ``machine`` (everything, the load of other programs included). Each Airflow part present also
    gets its own ``airflow:NAME`` key (``airflow:scheduler`` holds the task processes), so a gap on the
    Airflow side can be traced to the scheduler's tree, the API server, the DAG processor, the triggerer or
    PostgreSQL."""
    delta = {
        name: (after["parts"][name][0] - own, after["parts"][name][1] - reaped)
        for name, (own, reaped) in before["parts"].items()
        if name in after["parts"]
    }
    kube = delta.get(KUBE, (0.0, 0.0))
    out = {
        "airflow": round(_sum(delta, AIRFLOW_PARTS), 2),
        "pods": round(kube[1], 2),
        "kube_api": round(kube[0], 2),
        "google": round(_sum(delta, GOOGLE_PARTS), 2),
        "machine": round(after["machine"] - before["machine"], 2),
    }
    for name in AIRFLOW_PARTS:
        if name in delta:
            out[f"airflow:{name}"] = round(sum(delta[name]), 2)
    return out
