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
        if code == 200 and "state" in body:
            type(self).run_state = body["state"]
        text = {"detail": "deadlock detected"} if code == 500 else {"state": body.get("state")}
        self.wfile.write(json.dumps(text).encode())

    run_state = "running"

    def do_GET(self) -> None:
        """The client's token (as Airflow 3's simple auth manager hands it out), a run and its tasks."""
        if self.path == "/auth/token":
            answer: Any = {"access_token": "t"}
        elif self.path.endswith("/taskInstances?limit=100&offset=0"):
            tis = [{"task_id": "run_scripts", "map_index": 0, "state": "deferred"}]
            tis.append({"task_id": "discover", "map_index": -1, "state": "success"})
            answer = {"task_instances": tis, "total_entries": 2}
        elif "/dagRuns/" in self.path:
            answer = {"state": self.run_state}
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps(answer).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def airflow() -> Iterator[tuple[AirflowClient, type[_Airflow]]]:
    handler = type("Handler", (_Airflow,), {"answers": [], "seen": [], "run_state": "running"})
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


def test_a_run_that_does_not_end_in_time_is_named_and_marked_failed(
    airflow: tuple[AirflowClient, type[_Airflow]],
) -> None:
    """A stuck run must not keep later runs queued behind it (max_active_runs=1): the wait ends it."""
    client, handler = airflow
    with pytest.raises(TimeoutError) as caught:
        client.wait_dag_run("d", "r1", timeout=0)
    assert "unfinished tasks: run_scripts[0]=deferred;" in str(caught.value)
    assert "marked failed" in str(caught.value)
    assert handler.seen == [("PATCH", "/api/v2/dags/d/dagRuns/r1", {"state": "failed"})]
    assert client.dag_run("d", "r1")["state"] == "failed"


def test_a_stuck_run_is_left_alone_when_asked(airflow: tuple[AirflowClient, type[_Airflow]]) -> None:
    client, handler = airflow
    with pytest.raises(TimeoutError, match="still running after 0s; unfinished tasks: run_scripts"):
        client.wait_dag_run("d", "r1", timeout=0, end_if_stuck=False)
    assert handler.seen == []
