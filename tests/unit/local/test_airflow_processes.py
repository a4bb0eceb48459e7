"""Airflow's processes on the stack: up only when Airflow reports each of its parts healthy."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from local import airflow_processes
from tests.conftest import free_port


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
        assert (
            airflow_processes.parts_healthy(f"http://127.0.0.1:{server.server_port}/api/v2/monitor/health")
            is healthy
        )
    finally:
        server.shutdown()
    assert airflow_processes.parts_healthy(f"http://127.0.0.1:{free_port()}/api/v2/monitor/health") is False
