"""What the kubelet sees of a running pod's resource use, as cAdvisor samples it: peak memory, CPU time.

Podman containers: the container's own cgroup on the host (found by its id: ``podman run --cidfile``),
v1 ``memory.max_usage_in_bytes``/``cpuacct.usage`` or v2 ``memory.peak``/``cpu.stat``. Processes (the
fallback kubelet, no cgroup of their own): the pod's process tree from /proc, the highest summed RSS seen
and the CPU time of the live processes and the children they reaped. Served by ``GET /_double/usage``, to
check the figures the entrypoint prints on its end line (what the report uses) against the node's view.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

CGROUP_ROOT = Path("/sys/fs/cgroup")
SEARCH_DEPTH = 4  # levels under a hierarchy's root searched for a container's cgroup


@dataclass
class PodUsage:
    """One pod's figures as sampled so far."""

    namespace: str
    name: str
    uid: str
    source: str  # "cgroup" or "procfs"
    peak_memory_bytes: int = 0
    cpu_secs: float = 0.0
    samples: int = 0
    final: bool = False
    _dirs: dict[str, Path] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form served by the double."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "source": self.source,
            "peak_memory_bytes": self.peak_memory_bytes,
            "cpu_secs": round(self.cpu_secs, 3),
            "samples": self.samples,
            "final": self.final,
        }


def sample_cgroup(usage: PodUsage, cid_file: Path, root: Path = CGROUP_ROOT) -> None:
    """Read a podman container's cgroup once (nothing when it is not there yet or any more).

    :param cid_file: the file ``podman run --cidfile`` wrote the container id to.
    :param root: the cgroup mount point.
    """
    if not usage._dirs:
        cid = cid_file.read_text().strip() if cid_file.is_file() else ""
        if not cid:
            return
        usage._dirs = _find_dirs(cid, root)
    memory = usage._dirs.get("memory")
    cpu = usage._dirs.get("cpu")
    with contextlib.suppress(OSError, ValueError):
        if memory is not None:
            name = "memory.peak" if (memory / "memory.peak").exists() else "memory.max_usage_in_bytes"
            usage.peak_memory_bytes = max(usage.peak_memory_bytes, int((memory / name).read_text()))
        if cpu is not None:
            if (cpu / "cpuacct.usage").exists():
                usage.cpu_secs = max(usage.cpu_secs, int((cpu / "cpuacct.usage").read_text()) / 1e9)
            else:
                stat = dict(line.split() for line in (cpu / "cpu.stat").read_text().splitlines())
                usage.cpu_secs = max(usage.cpu_secs, int(stat["usage_usec"]) / 1e6)
        usage.samples += 1


def _find_dirs(cid: str, root: Path) -> dict[str, Path]:
    """The container's cgroup directories: v1 memory and cpuacct hierarchies, or the v2 one for both."""
    if (root / "cgroup.controllers").exists():
        found = _search(root, cid)
        return {"memory": found, "cpu": found} if found else {}
    out = {}
    for key, hierarchy in (("memory", "memory"), ("cpu", "cpuacct")):
        found = _search(root / hierarchy, cid)
        if found:
            out[key] = found
    return out


def _search(top: Path, cid: str) -> Path | None:
    for current, dirs, _ in os.walk(top):
        if len(Path(current).relative_to(top).parts) >= SEARCH_DEPTH:
            dirs.clear()
        for name in dirs:
            if cid in name:
                return Path(current) / name
    return None


def sample_processes(usage: PodUsage, pid: int) -> None:
    """Read a process pod's tree once: summed RSS, and CPU time including reaped children.

    :param pid: the pod's first process.
    """
    try:
        first = psutil.Process(pid)
        tree = [first, *first.children(recursive=True)]
    except psutil.Error:
        return
    rss, cpu = 0, 0.0
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            rss += proc.memory_info().rss
            times = proc.cpu_times()
            cpu += times.user + times.system + times.children_user + times.children_system
    usage.peak_memory_bytes = max(usage.peak_memory_bytes, rss)
    usage.cpu_secs = max(usage.cpu_secs, cpu)
    usage.samples += 1
