"""The stack's processes: start one in its own process group with its log and pid file, ask whether it runs,
wait for it to be ready, stop it (SIGTERM, then SIGKILL).

A component is a name: its log is ``LOGS/NAME.log``, its pid file ``PIDS/NAME.pid`` (the pid and the
process's start time). Imports :mod:`local.config` and :mod:`local.airflow_env` (a component's default
environment is Airflow's).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from local import config
from local.airflow_env import full_env

if TYPE_CHECKING:
    from collections.abc import Callable


def log(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


def pidfile(name: str) -> Path:
    """A component's pid file: its pid and the process's start time."""
    return config.PIDS / f"{name}.pid"


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command in parentheses (field 3, the state, first); [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _start_time(pid: int) -> str | None:
    """A process's start time in ticks since boot (/proc/PID/stat field 22): with the pid, its identity."""
    fields = _stat_fields(pid)
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (an exited process nobody reaped yet).

    :param pid: the process.
    """
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def alive(name: str) -> int | None:
    """The pid of a component if it is running (one this process started and that exited is reaped).

    The pid file holds the pid and the process's start time. A pid file left behind (a stack that was not
    stopped) can name a pid the kernel has since given to another process, e.g. another stack's triggerer:
    a different start time means the component is gone, and ``stop`` must not signal that stranger's
    process group (it did: a ``clean`` beside a running soak stopped the soak's triggerer).
    """
    try:
        fields = pidfile(name).read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    if len(fields) > 1 and _start_time(pid) != fields[1]:
        return None
    with contextlib.suppress(ChildProcessError):  # not our child: its own parent reaps it
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return None  # exited; without the reap it would linger as a zombie and look alive
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def spawn(name: str, cmd: list[str], *, env: dict[str, str] | None = None, user: str | None = None) -> int:
    """Start a component in its own process group, log to local/.run/logs/NAME.log."""
    config.LOGS.mkdir(parents=True, exist_ok=True)
    config.PIDS.mkdir(parents=True, exist_ok=True)
    if user and os.geteuid() == 0:
        cmd = ["runuser", "-u", user, "--", *cmd]
    with (config.LOGS / f"{name}.log").open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            env=env or full_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # another user may not be able to enter the clone (a 0700 parent): start it where it can
            cwd="/" if user else str(config.ROOT),
        )
    pidfile(name).write_text(f"{proc.pid} {_start_time(proc.pid) or ''}".strip())
    return proc.pid


def log_tail(name: str, lines: int = 25) -> str:
    """The last ``lines`` lines of a component's log, indented, for an error that must explain itself where
    only its message is seen (CI prints the exception, not the file it names)."""
    try:
        text = (config.LOGS / f"{name}.log").read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"    (no log: {exc})"
    return "\n".join("    " + line[:400] for line in text[-lines:]) or "    (empty log)"


def wait_for(
    what: str, check: Callable[[], bool], timeout: float, name: str | tuple[str, ...] | None = None
) -> None:
    """Wait until ``check()`` is true; fail at once, with the end of its log, when a component it waits on
    exited, and after ``timeout`` seconds otherwise.

    :param name: the component(s) whose process must stay alive meanwhile.
    """
    deadline = time.monotonic() + timeout
    names = (name,) if isinstance(name, str) else (name or ())
    while not check():
        for part in names:
            if not alive(part):
                where = f"the end of {config.LOGS}/{part}.log"
                raise RuntimeError(f"{what}: {part} exited during start; {where}:\n{log_tail(part)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s; see {config.LOGS}")
        time.sleep(0.2)


def http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status < 500)
    except Exception:
        return False


def stop(name: str, timeout: float = 15) -> None:
    """SIGTERM the component's process group, SIGKILL after ``timeout``."""
    pid = alive(name)
    if pid is None:
        pidfile(name).unlink(missing_ok=True)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(name) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    time.sleep(0.2)
    pidfile(name).unlink(missing_ok=True)
