"""The local stack starts from a clone whose parent is private (0700), as under root's home or mktemp -d."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from local import stack


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.skipif(os.geteuid() != 0, reason="as a non-root user postgres runs as that user, under RUN")
@pytest.mark.skipif(not (stack.PG_BIN / "initdb").exists(), reason="PostgreSQL binaries not installed")
def test_stack_postgres_starts_from_a_clone_under_a_private_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    run = private / "clone" / "local" / ".run"
    monkeypatch.setattr(stack, "RUN", run)
    monkeypatch.setattr(stack, "LOGS", run / "logs")
    monkeypatch.setattr(stack, "PIDS", run / "pids")
    monkeypatch.setattr(stack, "PORTS", stack.Ports(pg=_free_port()))
    monkeypatch.delenv("SR_PG_HOME", raising=False)  # the default: a folder of its own under /var/tmp
    home = stack.pg_home()
    monkeypatch.chdir(private)  # the caller's cwd is unreachable for postgres' user too
    try:
        stack.start_postgres()
        assert stack.alive("postgres")
        assert (home / "data" / "PG_VERSION").exists()
        assert not (run / "pg").exists()
    finally:
        stack.stop("postgres")
        shutil.rmtree(home, ignore_errors=True)
    assert not stack.alive("postgres")


def test_stack_pg_home_is_one_folder_per_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SR_PG_HOME", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(stack, "RUN", tmp_path / "a" / "clone" / "local" / ".run")
    first = stack.pg_home()
    assert stack.pg_home() == first  # kept across up/down
    monkeypatch.setattr(stack, "RUN", tmp_path / "another" / "clone" / "local" / ".run")
    assert stack.pg_home() != first


def test_airflow_log_servers_listen_on_the_stacks_own_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two stacks side by side (a benchmark beside `make test`) must not both bind 8793/8794."""
    monkeypatch.setattr(stack, "PORTS", stack.Ports(worker_log=18793, trigger_log=18794))
    env = stack.airflow_env()
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "18793"
    assert env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "18794"


def test_a_stale_pid_file_naming_another_process_is_not_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pid file left behind whose pid now belongs to another process (another stack's) is not ours."""
    monkeypatch.setattr(stack, "PIDS", tmp_path)
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        (tmp_path / "triggerer.pid").write_text(f"{stranger.pid} 1")  # its pid, another start time
        assert stack.alive("triggerer") is None
        stack.stop("triggerer", timeout=1)
        assert stranger.poll() is None  # not signalled
        (tmp_path / "triggerer.pid").write_text(f"{stranger.pid} {stack._start_time(stranger.pid)}")
        assert stack.alive("triggerer") == stranger.pid  # the same process: alive, and stop stops it
        stack.stop("triggerer", timeout=5)
        assert stranger.wait(timeout=5) is not None
    finally:
        if stranger.poll() is None:
            stranger.kill()


def test_a_stuck_tests_diagnosis_keeps_the_stacks_errors_not_the_tasks() -> None:
    """The scheduler's log carries the task output too: a task's errors are its own, in its task log."""
    log_text = [
        "2026-12-01 [info     ] starting",
        "2026-12-01 [error    ] Container 'base': exit_code=3 [airflow.task.operators] task_id=run_scripts",
        "2026-12-01 [error    ] Task failed with exception     [task] dag_id=d",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "airflow.sdk.api.client.ServerResponseError: Server returned error",
        "2026-12-01 [error    ] Workload execution failed.     [airflow.executors.local_executor]",
        "Traceback (most recent call last):",
        '  File "triggerer_job_runner.py", line 9, in run',
        "OSError: [Errno 98] Address already in use",
    ]
    assert stack._error_lines(log_text) == [
        "2026-12-01 [error    ] Workload execution failed.     [airflow.executors.local_executor]",
        "Traceback: OSError: [Errno 98] Address already in use",
    ]


def _health(**parts: str | None) -> dict[str, Any]:
    """Airflow's health answer: every part healthy and heartbeating, except the statuses in ``parts``
    (a part that never heartbeat has no heartbeat time)."""
    beat = "2026-12-01T07:53:57+00:00"
    body: dict[str, Any] = {"metadatabase": {"status": "healthy"}}
    for part in ("scheduler", "triggerer", "dag_processor"):
        status = parts.get(part, "healthy")
        body[part] = {"status": status, f"latest_{part}_heartbeat": beat if status == "healthy" else None}
    return body


@pytest.mark.parametrize(
    ("body", "healthy"),
    [
        pytest.param(_health(), True, id="3.x-all-healthy"),
        pytest.param(_health(triggerer="unhealthy"), False, id="triggerer-never-heartbeat"),
        pytest.param(_health(dag_processor=None), True, id="2.x-dag-processor-inside-the-scheduler"),
    ],
)
def test_the_stack_is_up_only_when_airflow_reports_every_part_healthy(
    body: dict[str, Any], healthy: bool
) -> None:
    """A triggerer that died at start showed only as deferred tasks that never resumed."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert stack.parts_healthy(f"http://127.0.0.1:{server.server_port}/api/v2/monitor/health") is healthy
    finally:
        server.shutdown()
    assert stack.parts_healthy(f"http://127.0.0.1:{_free_port()}/api/v2/monitor/health") is False


def test_a_part_that_exits_while_waited_for_is_named_with_the_end_of_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI prints the exception, not the log file it names: the message carries the log's last lines."""
    monkeypatch.setattr(stack, "PIDS", tmp_path / "pids")
    monkeypatch.setattr(stack, "LOGS", tmp_path / "logs")
    stack.spawn(
        "triggerer", ["sh", "-c", "echo starting; echo 'OSError: address already in use' >&2; exit 1"]
    )
    with pytest.raises(RuntimeError) as err:
        stack.wait_for("Airflow's parts", lambda: False, 30, ("triggerer",))
    message = str(err.value)
    assert "triggerer exited during start" in message
    assert "starting" in message
    assert "address already in use" in message
