"""The local stack: GCS emulator, PostgreSQL, the Kubernetes double and Airflow (3.x or 2.x), on one machine.

``python -m local.stack up|down|status|env|run -- CMD``. Every process runs in its own process group with
its log under ``local/.run/logs/``; ``down`` stops them all (SIGTERM, then SIGKILL) and never hangs.

Airflow comes from the virtualenv named by ``SR_AIRFLOW_VENV`` (default: the one running this module), so
one stack code runs every supported Airflow: 3.x as api-server, scheduler, dag-processor and triggerer;
2.x as webserver (the v1 REST API), scheduler (which parses the DAGs itself) and triggerer. Each Airflow
version gets its own ``AIRFLOW_HOME`` and metadata database, so switching versions never mixes schemas.

This module is the orchestration only: the order of the starts, the stop of everything, the status, what a
stuck test should say, the command line. Each part lives in a module of its own, which this one imports and
none of which imports it: :mod:`local.config` (folders, ports, buckets), :mod:`local.processes` (pid files,
spawn, wait, stop), :mod:`local.airflow_env` and :mod:`local.pod_env` (environments), :mod:`local.postgres`,
:mod:`local.services` (GCS emulator, IAM front, Pub/Sub), :mod:`local.kube` and
:mod:`local.airflow_processes`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time

from local import config
from local import pubsub as local_pubsub
from local.airflow_env import airflow_env, airflow_parts, full_env
from local.airflow_processes import start_airflow
from local.kube import start_kube
from local.postgres import pg_home, start_postgres
from local.processes import alive, log, stop
from local.services import finish_pubsub, spawn_pubsub, start_gcs, start_iam

AIRFLOW_PARTS = ["api-server", "webserver", "scheduler", "dag-processor", "triggerer", "triggerer-2"]


COMPONENTS = ["pubsub", "gcs", "iam", "postgres", "kube", *AIRFLOW_PARTS]


def up(*, kube: bool = True, airflow_too: bool = True) -> None:
    config.RUN.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    spawn_pubsub()
    start_gcs()
    start_iam()
    start_postgres()
    if kube:
        start_kube()
    finish_pubsub()
    if airflow_too:
        start_airflow()
    log(f"up in {time.monotonic() - start:.1f}s; logs in {config.LOGS}; stop with `make down`")


def down() -> None:
    # Airflow first (it talks to the others while shutting down), then the services; each group in parallel.
    for group in (AIRFLOW_PARTS, [n for n in COMPONENTS if n not in AIRFLOW_PARTS]):
        threads = [
            threading.Thread(
                target=stop, args=(name,), kwargs={"timeout": 20 if name in ("scheduler", "kube") else 15}
            )
            for name in group
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    left = [n for n in COMPONENTS if alive(n)]
    if left:
        raise RuntimeError(f"still running: {left}")
    log("down")


def status() -> dict[str, int | None]:
    return {name: alive(name) for name in COMPONENTS}


def _error_lines(text: list[str]) -> list[str]:
    """A log's error lines, a traceback as its exception line. The scheduler's log also carries the
    LocalExecutor's task output: a task's own errors (``[task]``, ``task_id=``) are in its task log."""
    found = []
    for i, line in enumerate(text):
        if line.startswith("Traceback"):
            exc = next((t for t in text[i + 1 :] if t and not t[0].isspace()), "")
            if "ServerResponseError" not in exc:  # the task client's, reported by its task
                found.append(f"Traceback: {exc.strip()[:300]}")
        elif any(m in line for m in ("ERROR", "CRITICAL", "[error")) and not any(
            t in line for t in ("[task]", "task_id=")
        ):
            found.append(line.strip()[:300])
    return found


def diagnosis(parts: tuple[str, ...] = ("triggerer", "scheduler"), lines: int = 6) -> str:
    """What a stuck test should say about the stack: the components that are not running, and the last
    error lines of ``parts``' logs (a deferred task that never resumes points at the triggerer).

    :param parts: components whose logs are searched.
    :param lines: error lines kept per log, the latest.
    """
    services = [n for n in COMPONENTS if n not in AIRFLOW_PARTS and (n != "pubsub" or local_pubsub.enabled())]
    dead = [name for name in [*services, *airflow_parts()] if not alive(name)]
    out = [f"stack parts not running: {', '.join(dead) or 'none'}"]
    for name in parts:
        try:
            text = (config.LOGS / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            continue
        errors = _error_lines(text)[-lines:]
        if errors:
            out.append(f"{name}.log's last errors: " + " | ".join(errors))
    return "; ".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "env", "run", "clean"])
    parser.add_argument("--no-kube", action="store_true")
    parser.add_argument("--no-airflow", action="store_true")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "up":
        up(kube=not args.no_kube, airflow_too=not args.no_airflow)
    elif args.command == "down":
        down()
    elif args.command == "status":
        print(json.dumps(status(), indent=2))
    elif args.command == "clean":
        down()
        for path in (pg_home(), config.RUN):
            shutil.rmtree(path, ignore_errors=True)
    elif args.command == "env":
        for key, value in airflow_env().items():
            print(f"export {key}={json.dumps(value)}")
    else:
        cmd = [a for a in args.rest if a != "--"]
        try:
            up(kube=not args.no_kube, airflow_too=not args.no_airflow)
            return subprocess.run(cmd, env=full_env(), check=False).returncode
        finally:
            down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
