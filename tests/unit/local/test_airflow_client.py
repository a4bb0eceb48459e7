"""The local Airflow client's user actions, against a real HTTP server answering as Airflow did."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from local.airflow_client import AirflowClient


class _Airflow(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[tuple[str, str, Any]] = []

    def do_PATCH(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(("PATCH", self.path, body))
        code = self.answers.pop(0) if self.answers else 200
        self.send_response(code)
        self.end_headers()
        text = {"detail": "deadlock detected"} if code == 500 else {"state": body.get("state")}
        self.wfile.write(json.dumps(text).encode())

    def do_GET(self) -> None:  # the client's token, as Airflow 3's simple auth manager hands it out
        self.send_response(200 if self.path == "/auth/token" else 404)
        self.end_headers()
        self.wfile.write(json.dumps({"access_token": "t"}).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def airflow() -> Iterator[tuple[AirflowClient, type[_Airflow]]]:
    handler = type("Handler", (_Airflow,), {"answers": [], "seen": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield AirflowClient(f"http://127.0.0.1:{server.server_port}", api_version=2), handler
    finally:
        server.shutdown()


def test_marking_a_run_failed_is_tried_again_after_airflows_500(
    airflow: tuple[AirflowClient, type[_Airflow]],
) -> None:
    """A database deadlock between the API and the scheduler answers 500 once; the user clicks again."""
    client, handler = airflow
    handler.answers = [500]
    client.set_dag_run_state("d", "r1", "failed")
    assert [s[2] for s in handler.seen] == [{"state": "failed"}, {"state": "failed"}]


def test_a_change_refused_for_another_reason_is_not_tried_again(
    airflow: tuple[AirflowClient, type[_Airflow]],
) -> None:
    client, handler = airflow
    handler.answers = [409]
    with pytest.raises(RuntimeError, match=": 409 "):
        client.set_dag_run_state("d", "r1", "failed")
    assert len(handler.seen) == 1


def test_a_500_that_persists_is_raised(airflow: tuple[AirflowClient, type[_Airflow]]) -> None:
    client, handler = airflow
    handler.answers = [500, 500, 500]
    with pytest.raises(RuntimeError, match=": 500 "):
        client.user_change("PATCH", "/x", {}, pause=0.01)
    assert len(handler.seen) == 3
