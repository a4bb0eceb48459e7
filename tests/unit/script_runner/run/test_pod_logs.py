"""The operator's log follower against the Kubernetes double: no line lost when the stream breaks."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

from script_runner.run.pod_logs import CatchUpPodManager
from script_runner.run.usage import parse_end_line
from tests.conftest import free_port
from tests.unit.local.kube_double_process import running_double
from tests.unit.local.test_kube_double import NS, pod, wait_phase

# Runs until the test lets it end (a file appears), so it ends while the API server is down.
SCRIPT = "echo begin $$; until [ -e {go} ]; do sleep 0.1; done; echo end $$"


class _Lines:
    """The messages the follower logged to the task log (KPO's ``log_formatter`` sees each one, on every
    provider; its progress callbacks get raw lines on some and messages on others)."""

    seen: list[str] = []

    @staticmethod
    def formatter(container: str, message: str) -> str:
        _Lines.seen.append(message)
        return f"[{container}] {message}"


def _wait(what: str, check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_pod_logs_read_the_lines_a_container_printed_while_the_api_server_was_down(tmp_path: Path) -> None:
    # The API server restarts while the script runs, and the script ends before it is back: KPO's own
    # follower then sees a finished container and stops without reading the lines after the break.
    _Lines.seen = []
    port, go, state = free_port(), tmp_path / "go", tmp_path / "kube"
    state.mkdir()
    outcome: dict[str, Any] = {}
    with running_double(state, port=port) as first:
        api = first["api"]
        created = api.create_namespaced_pod(NS, pod("tail", ["bash", "-c", SCRIPT.format(go=go)]))
        wait_phase(api, "tail", {"Running"})
        _wait("the first line", lambda: "begin" in api.read_namespaced_pod_log("tail", NS))
        manager = CatchUpPodManager(kube_client=api)

        def follow() -> None:
            try:
                outcome["status"] = manager.fetch_container_logs(
                    created, "base", follow=True, log_formatter=_Lines.formatter
                )
            except Exception as exc:  # pragma: no cover - shown by the assertion below
                outcome["error"] = exc

        follower = threading.Thread(target=follow)
        follower.start()
        time.sleep(2)  # the follower is on the stream (KPO logs a line when the next one comes or it breaks)
        first["proc"].send_signal(signal.SIGUSR1)  # the API server goes down; the container runs on
        first["proc"].wait(timeout=15)
    go.touch()  # the script ends while nothing serves the API
    _wait("the container's end", lambda: any(state.rglob("exit")))
    with running_double(state, port=port) as second:
        follower.join(timeout=60)
        assert "error" not in outcome, outcome
        assert outcome["status"].running is False
        assert [line.split()[0] for line in _Lines.seen] == ["begin", "end"], _Lines.seen  # once each
        second["api"].delete_namespaced_pod("tail", NS)


def test_pod_logs_an_unbroken_stream_is_read_once(tmp_path: Path) -> None:
    _Lines.seen = []
    with running_double(tmp_path) as double:
        api = double["api"]
        end = "[runner] event=end script=s.sh exit=0 secs=0 reason=ok cpu_secs=0.050 usage=rusage"
        command = f"echo one; echo '{end}'; echo two"
        created = api.create_namespaced_pod(NS, pod("plain", ["bash", "-c", command]))
        wait_phase(api, "plain", {"Running", "Succeeded"})
        manager = CatchUpPodManager(kube_client=api)
        status = manager.fetch_container_logs(created, "base", follow=True, log_formatter=_Lines.formatter)
        assert status.running is False
        assert [line.rstrip() for line in _Lines.seen] == ["one", end, "two"]
        assert manager.stream_broke is False
        # The end line it streamed is kept for the usage (no second read of the log's end).
        streamed = manager.streamed_end_line(created, "base")
        assert streamed is not None
        assert parse_end_line(streamed)["cpu_secs"] == 0.05
        assert manager.streamed_end_line(created, "other") is None
