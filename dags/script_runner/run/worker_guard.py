"""A task process that outlives its worker must not act on its pod: it dies with the worker instead.

Airflow runs a task in a process forked by the worker that supervises it (Airflow 3: the executor's worker,
which heartbeats for the task; Airflow 2: ``airflow tasks run``, the local task job). When that worker is
killed (the kernel's OOM killer, a lost node, ``kill -9``), nothing heartbeats for the task any more and
the scheduler, after ``task_instance_heartbeat_timeout``, fails the try and starts the next one, which
reattaches to the running pod. The orphaned task process, though, lives on: it still watches the pod, its
``execution_timeout`` fires in it, and it would delete the pod and write an attempt record under the next
try's feet (seen end to end: the orphan deleted the pod at its timeout, the next try started a second pod
and the script ran twice). On a real worker the container goes with the worker; here the kernel is asked
to do the same: ``PR_SET_PDEATHSIG`` sends SIGKILL to the task process when its parent dies. SIGKILL, not
SIGTERM: SIGTERM would run ``on_kill``, which deletes the pod the next try should find.

Only a task process whose parent is an Airflow or Celery worker is guarded: ``airflow dags test``, unit
tests and other direct calls of ``execute`` keep their process as it was.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from pathlib import Path

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_WORKER_MARKS = ("airflow", "celery")


def parent_is_a_worker(ppid: int | None = None) -> bool:
    """Whether the parent process is an Airflow worker or task supervisor (by its command line).

    :param ppid: the parent's pid; this process's parent when omitted.
    """
    pid = os.getppid() if ppid is None else ppid
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return any(mark in cmdline.lower() for mark in _WORKER_MARKS)


def die_with_worker() -> bool:
    """Have the kernel SIGKILL this task process when its worker dies (Linux; a no-op elsewhere).

    :returns: whether the guard is set (False: not Linux, the parent is not a worker, or prctl refused).
    """
    if not sys.platform.startswith("linux") or not parent_is_a_worker():
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        log.warning("could not ask to die with the worker: errno %s", ctypes.get_errno())
        return False
    if os.getppid() == 1:  # the worker died before the guard was set: behave as if it had fired
        os.kill(os.getpid(), signal.SIGKILL)
    return True
