"""A restart of the Kubernetes double (its API server and kubelet) keeps the cluster, as etcd and a node do."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.conftest import free_port
from tests.unit.local.kube_double_process import running_double
from tests.unit.local.test_kube_double import NS, pod, wait_phase

# The survivor runs until the test lets it end (a file appears): a fixed sleep raced the restart on a
# loaded machine (the process ended on its own before the test looked, and read as killed by the double).
SCRIPT = "echo begin $$; until [ -e {go} ]; do sleep 0.1; done; echo end $$"


@contextmanager
def _double(state: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes], client.CoreV1Api]]:
    with running_double(state, port=port) as double:
        yield double["proc"], double["api"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def _log(api: client.CoreV1Api, name: str) -> str:
    return str(api.read_namespaced_pod_log(name, NS, _preload_content=False).data.decode())


def _scheduled(api: client.CoreV1Api, uid: str) -> int:
    events: Any = api.list_namespaced_event(NS).items
    return sum(1 for e in events if e.reason == "Scheduled" and e.involved_object.uid == uid)


def test_kube_double_restart_keeps_running_pods_their_logs_and_events(tmp_path: Path) -> None:
    port = free_port()
    with _double(tmp_path, port) as (first, api):
        go = tmp_path / "go"
        created = api.create_namespaced_pod(NS, pod("survivor", ["bash", "-c", SCRIPT.format(go=go)]))
        api.create_namespaced_pod(NS, pod("finished", ["bash", "-c", "echo finished early"]))
        assert wait_phase(api, "finished", {"Succeeded"}).status.phase == "Succeeded"
        running = wait_phase(api, "survivor", {"Running"})
        assert running.status.phase == "Running"
        deadline = time.monotonic() + 10
        while "begin" not in _log(api, "survivor") and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = int(_log(api, "survivor").split()[1])
        first.send_signal(signal.SIGUSR1)  # the API server restarts; the node's containers run on
        first.wait(timeout=15)
    assert _alive(pid), "the pod's process died with the double"
    with _double(tmp_path, port) as (_, api):
        again = api.read_namespaced_pod("survivor", NS)
        assert again.metadata.uid == created.metadata.uid
        go.touch()
        done = wait_phase(api, "survivor", {"Succeeded", "Failed"}, timeout=30)
        assert done.status.phase == "Succeeded"
        assert done.status.container_statuses[0].state.terminated.exit_code == 0
        log = _log(api, "survivor")
        assert log.splitlines() == [f"begin {pid}", f"end {pid}"], log  # every line once, none lost
        assert _scheduled(api, created.metadata.uid) == 1  # events survive: still one pod scheduled
        assert _log(api, "finished") == "finished early\n"  # a finished pod's log stays until it is deleted
        api.delete_namespaced_pod("survivor", NS)
        api.delete_namespaced_pod("finished", NS)


def test_kube_double_stopped_for_good_stops_its_pods_and_starts_empty(tmp_path: Path) -> None:
    port = free_port()
    with _double(tmp_path, port) as (first, api):
        api.create_namespaced_pod(NS, pod("goner", ["bash", "-c", "echo begin $$; sleep 60"]))
        wait_phase(api, "goner", {"Running"})
        deadline = time.monotonic() + 10
        while "begin" not in _log(api, "goner") and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = int(_log(api, "goner").split()[1])
        first.terminate()  # `make down`: the node goes too
        first.wait(timeout=15)
    assert not _alive(pid)
    with _double(tmp_path, port) as (_, api):
        assert api.list_namespaced_pod(NS).items == []
