"""Airflow's processes on the stack: the ``airflow`` command, the start of this version's parts (after the
metadata database's migration), and whether Airflow reports each part healthy.

3.x runs api-server, scheduler, dag-processor and triggerer; 2.x webserver (the v1 REST API), scheduler
(which parses the DAGs itself) and triggerer. Imports :mod:`local.config`, :mod:`local.processes`,
:mod:`local.airflow_env` and :mod:`local.postgres` (the databases it migrates).
"""

from __future__ import annotations

import json
import subprocess
import urllib.request

from local import config
from local.airflow_env import airflow_major, airflow_parts, airflow_version, full_env, write_webserver_config
from local.postgres import create_databases
from local.processes import alive, http_ok, log, spawn, stop, wait_for


def airflow(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(config.VENV_BIN / "airflow"), *args],
        env=full_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(config.ROOT),
    )


def start_airflow() -> None:
    """Migrate the metadata database and start this Airflow version's processes; wait for its REST API."""
    create_databases()
    if airflow_major() < 3:
        write_webserver_config()
    out = airflow("db", "migrate")
    if out.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    api = f"http://127.0.0.1:{config.PORTS.airflow}"
    web, *rest = airflow_parts()
    if not alive(web):
        spawn(web, [str(config.VENV_BIN / "airflow"), web, "--port", str(config.PORTS.airflow)])
    for name in rest:
        if not alive(name):
            spawn(name, [str(config.VENV_BIN / "airflow"), name])
    health = f"{api}/api/v2/monitor/health" if airflow_major() >= 3 else f"{api}/api/v1/health"
    wait_for(f"Airflow {web}", lambda: http_ok(health), 240, web)
    if airflow_major() >= 3:
        # The execution API (what task processes call) builds its versioned app on its first request: 8 s
        # here on a quiet machine, 47-53 s on a busy one, longer than a task's client waits (the first task
        # of a fresh stack, discover, then failed with ReadTimeout). Pay it now, before any task runs.
        wait_for("Airflow execution API", lambda: http_ok(f"{api}/execution/health", timeout=120), 240, web)
    # A part that died at start (or never heartbeats) would show only as tasks that never move: a deferred
    # task that never resumes without a triggerer. Wait until Airflow itself reports each part healthy.
    parts = "Airflow's scheduler, triggerer and dag processor"
    wait_for(parts, lambda: parts_healthy(health), 180, tuple(rest))
    log(f"Airflow {airflow_version()} UI {api} (every user is admin: no login needed)")


SECOND_TRIGGERER = "triggerer-2"


def start_second_triggerer(*, health_check_threshold: int = 8) -> int:
    """Start a second triggerer beside the stack's (failover tests); ``down`` stops it with the rest.

    Its trigger log server gets its own port (the stack's trigger log port + 2). It takes over the triggers
    of a triggerer whose heartbeat is older than ``health_check_threshold`` seconds (Airflow's default 30):
    the triggerer that reassigns is the one still beating, so the threshold is this one's.

    :param health_check_threshold: seconds without a heartbeat before another triggerer's triggers move.
    """
    env = {
        **full_env(),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(config.PORTS.trigger_log + 2),
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(health_check_threshold),
    }
    pid = alive(SECOND_TRIGGERER)
    if pid is None:
        pid = spawn(SECOND_TRIGGERER, [str(config.VENV_BIN / "airflow"), "triggerer"], env=env)
    return pid


def restore_triggerers() -> None:
    """Back to the stack's one triggerer after a failover test: start it again if it died, stop the second
    (a trigger it held moves back once its heartbeat is older than Airflow's threshold, 30 s)."""
    if alive("triggerer") is None:
        spawn("triggerer", [str(config.VENV_BIN / "airflow"), "triggerer"])
    stop(SECOND_TRIGGERER)


def parts_healthy(health_url: str) -> bool:
    """Whether Airflow's health endpoint reports every part it knows healthy (its latest heartbeat recent).

    :param health_url: ``/api/v2/monitor/health`` (3.x) or ``/api/v1/health`` (2.x); a part whose status
        is null (2.x's dag processor, which runs inside its scheduler) is not one.
    """
    try:
        with urllib.request.urlopen(health_url, timeout=10) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError):
        return False
    statuses = [v.get("status") for v in body.values() if isinstance(v, dict) and v.get("status") is not None]
    return bool(statuses) and all(status == "healthy" for status in statuses)
