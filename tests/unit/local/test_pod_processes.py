"""kube.pod_processes: the /proc scan for what a pod of the process kubelet left running (the e2e harness
and the soak bench both count these)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local import kube

_SLEEP = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]


@pytest.fixture
def spawn() -> Iterator[Callable[[list[str], Path], subprocess.Popen[bytes]]]:
    """Start a process (argv, cwd) and return once it runs its own command line; each is killed at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE)
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"up\n"  # exec'd: /proc shows its argv, not the forking parent's
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _pids(found: list[kube.PodProcess]) -> set[int]:
    return {proc.pid for proc in found}


def test_pod_processes_finds_a_process_working_in_a_pod_dir_and_not_one_beside_it(
    tmp_path: Path, spawn: Callable[[list[str], Path], subprocess.Popen[bytes]]
) -> None:
    pod_dir = tmp_path / "kube" / "pod-abc"
    other_dir = tmp_path / "kube" / "objects"
    pod_dir.mkdir(parents=True)
    other_dir.mkdir()
    in_pod = spawn(_SLEEP, pod_dir)
    spawn(_SLEEP, other_dir)

    found = kube.pod_processes(run_dir=tmp_path, entrypoint=tmp_path / "no-entrypoint")

    assert _pids(found) == {in_pod.pid}
    (proc,) = found
    assert proc.cwd == str(pod_dir.resolve())
    assert "time.sleep(60)" in proc.cmdline
    assert str(proc).startswith(f"{in_pod.pid}: ")
    assert str(proc).endswith(f"(cwd {pod_dir.resolve()})")


def test_pod_processes_finds_this_clones_entrypoint_and_not_another_clones(
    tmp_path: Path, spawn: Callable[[list[str], Path], subprocess.Popen[bytes]]
) -> None:
    ours = tmp_path / "clone" / "runner_image" / "entrypoint"
    theirs = tmp_path / "other-clone" / "runner_image" / "entrypoint"
    running_ours = spawn([*_SLEEP, str(ours)], tmp_path)
    spawn([*_SLEEP, str(theirs)], tmp_path)

    found = kube.pod_processes(run_dir=tmp_path / "run", entrypoint=ours)

    assert _pids(found) == {running_ours.pid}
