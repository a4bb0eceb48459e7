"""A task process dies with its worker (issue 12: a lost worker's orphan must not act on the pod)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local import processes
from script_runner.run import worker_guard

DAGS = str(Path(worker_guard.__file__).resolve().parents[2])

# The base interpreter (the venv's path could itself contain "airflow"); the guard needs only the stdlib.
PYTHON = os.path.realpath(sys.executable)
# The "worker": starts the "task process", prints its pid, then waits to be killed. Its command line is
# the interpreter, this code and the mark: the child's code (which names the clone's path) comes by env.
PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", os.environ["CHILD_CODE"]], stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(120)
"""
# The "task process": sets the guard as the operator does, says whether it took, then works on.
CHILD = f"""
import sys, time
sys.path.insert(0, {DAGS!r})
from script_runner.run.worker_guard import die_with_worker
print(die_with_worker(), flush=True)
time.sleep(120)
"""


def _run_pair(parent_mark: str) -> tuple[subprocess.Popen[str], int, str]:
    parent = subprocess.Popen(
        [PYTHON, "-c", PARENT, parent_mark],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "CHILD_CODE": CHILD},
    )
    assert parent.stdout is not None
    pid, guarded = parent.stdout.readline().split()
    return parent, int(pid), guarded


def _kill_parent_and_wait(parent: subprocess.Popen[str], child: int, secs: float) -> bool:
    """Kill the "worker"; whether its "task process" is still alive ``secs`` later (or once it is gone)."""
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + secs
    while processes.process_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    return processes.process_alive(child)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_task_process_under_an_airflow_worker_dies_when_the_worker_is_killed() -> None:
    parent, child, guarded = _run_pair("airflow worker -- LocalExecutor")
    try:
        assert guarded == "True"
        assert processes.process_alive(child)
        assert not _kill_parent_and_wait(parent, child, 5)  # gone with its worker, no grace, no on_kill
    finally:
        if processes.process_alive(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_process_not_run_by_a_worker_is_left_as_it_was() -> None:
    parent, child, guarded = _run_pair("some-shell")
    try:
        assert guarded == "False"
        assert _kill_parent_and_wait(parent, child, 1)  # dag.test(), unit tests: their process is theirs
    finally:
        if processes.process_alive(child):
            os.kill(child, signal.SIGKILL)


def test_the_worker_is_recognised_by_its_command_line() -> None:
    assert not worker_guard.parent_is_a_worker(2**22 + 12345)  # no such process
