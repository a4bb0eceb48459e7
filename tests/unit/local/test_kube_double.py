"""The Kubernetes API double, driven by the real kubernetes client (process kubelet, no stack needed)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from local.kube_double.selectors import field_matcher, label_matcher
from tests.unit.local.kube_double_process import running_double

NS = "composer-user-workloads"


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_double(tmp_path_factory.mktemp("kube")) as started:
        yield started


# What the "restricted" Pod Security level (the double's default for its namespace) requires.
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod(name: str, command: list[str], **labels: str) -> dict[str, Any]:
    container = {"name": "base", "image": "x", "command": command, "securityContext": dict(RESTRICTED)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }


def wait_phase(api: client.CoreV1Api, name: str, phases: set[str], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        current = api.read_namespaced_pod(name, NS)
        if current.status.phase in phases or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


def admin(url: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_kube_double_runs_a_pod_and_reports_its_exit_code(double: dict[str, Any]) -> None:
    api = double["api"]
    api.create_namespaced_pod(NS, pod("ok", ["bash", "-c", "echo hello; echo $HOSTNAME; exit 0"], app="t"))
    api.create_namespaced_pod(NS, pod("bad", ["bash", "-c", "echo failing; exit 3"], app="t"))
    ok = wait_phase(api, "ok", {"Succeeded", "Failed"})
    bad = wait_phase(api, "bad", {"Succeeded", "Failed"})
    assert ok.status.phase == "Succeeded"
    assert bad.status.phase == "Failed"
    assert bad.status.container_statuses[0].state.terminated.exit_code == 3
    # Streamed like KPO reads it (client 36 returns str(bytes) for a preloaded text body, whatever the server).
    raw = api.read_namespaced_pod_log("ok", NS, container="base", _preload_content=False)
    assert raw.data.decode().splitlines()[0] == "hello"
    for name in ("ok", "bad"):
        api.delete_namespaced_pod(name, NS)


def test_kube_double_label_and_field_selectors_filter_lists(double: dict[str, Any]) -> None:
    api = double["api"]
    api.create_namespaced_pod(NS, pod("sel-a", ["true"], team="a", tier="x"))
    api.create_namespaced_pod(NS, pod("sel-b", ["true"], team="b"))
    names = lambda **kw: sorted(p.metadata.name for p in api.list_namespaced_pod(NS, **kw).items)  # noqa: E731
    assert names(label_selector="team=a") == ["sel-a"]
    assert names(label_selector="team in (a,b),!tier") == ["sel-b"]
    assert names(field_selector="metadata.name=sel-b") == ["sel-b"]
    assert names(label_selector="team=nobody") == []
    for name in ("sel-a", "sel-b"):
        api.delete_namespaced_pod(name, NS)


def test_kube_double_watch_sees_the_pod_run_and_finish(double: dict[str, Any]) -> None:
    api = double["api"]
    api.create_namespaced_pod(NS, pod("watched", ["bash", "-c", "sleep 0.5"], w="1"))
    phases = []
    for event in watch.Watch().stream(api.list_namespaced_pod, NS, label_selector="w=1", timeout_seconds=15):
        phases.append(event["object"].status.phase)
        if event["object"].status.phase == "Succeeded":
            break
    assert phases[-1] == "Succeeded"
    assert "Running" in phases
    api.delete_namespaced_pod("watched", NS)


def test_kube_double_delete_kills_the_running_process(double: dict[str, Any]) -> None:
    api = double["api"]
    api.create_namespaced_pod(NS, pod("sleeper", ["sleep", "300"]))
    assert wait_phase(api, "sleeper", {"Running"}).status.phase == "Running"
    api.delete_namespaced_pod("sleeper", NS, grace_period_seconds=1)
    deadline = time.monotonic() + 15
    while admin(double["url"], "GET", "/_double/state")["running"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert admin(double["url"], "GET", "/_double/state")["running"] == []
    deadline = time.monotonic() + 15
    status = 200
    while status == 200 and time.monotonic() < deadline:
        try:
            api.read_namespaced_pod("sleeper", NS)
            time.sleep(0.2)
        except ApiException as exc:
            status = exc.status
    assert status == 404


def test_kube_double_delete_sends_sigterm_to_the_first_process_only(
    double: dict[str, Any], tmp_path: Any
) -> None:
    # As a container runtime: PID 1 gets the TERM (the runner's entrypoint forwards it to the script); the
    # rest of the pod gets SIGKILL once PID 1 is gone. A TERM to the whole group reached the script twice.
    out = tmp_path / "signals"
    child = f'trap "echo child >> {out}" TERM; echo $$ > {out}.pid; sleep 300 & wait; sleep 300 & wait'
    first = f"trap \"echo first >> {out}; exit 0\" TERM; bash -c '{child}' & sleep 300 & wait"
    api = double["api"]
    api.create_namespaced_pod(NS, pod("signals", ["bash", "-c", first]))
    assert wait_phase(api, "signals", {"Running"}).status.phase == "Running"
    deadline = time.monotonic() + 10
    while not Path(f"{out}.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    child_pid = int(Path(f"{out}.pid").read_text())
    api.delete_namespaced_pod("signals", NS, grace_period_seconds=5)
    deadline = time.monotonic() + 15
    while admin(double["url"], "GET", "/_double/state")["running"] and time.monotonic() < deadline:
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(child_pid)  # nothing of the pod outlives its first process
    assert out.read_text().splitlines() == ["first"]  # the child got SIGKILL, never a TERM of its own


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for its reaper does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


def test_kube_double_injected_api_errors_are_spent(double: dict[str, Any]) -> None:
    api = double["api"]
    admin(
        double["url"],
        "POST",
        "/_double/faults",
        [{"fault": "api_error", "status": 503, "method": "GET", "count": 1}],
    )
    with pytest.raises(ApiException) as err:
        api.list_namespaced_pod(NS)
    assert err.value.status == 503
    api.list_namespaced_pod(NS)  # the rule is spent
    assert admin(double["url"], "GET", "/_double/faults")[0]["count"] == 0
    admin(double["url"], "DELETE", "/_double/faults")


def test_kube_double_unschedulable_fault_leaves_a_failed_scheduling_event(double: dict[str, Any]) -> None:
    api = double["api"]
    spec = pod("stuck", ["true"])
    spec["metadata"]["annotations"] = {"script-runner.local/fault": "unschedulable"}
    api.create_namespaced_pod(NS, spec)
    deadline = time.monotonic() + 10
    reasons: list[str] = []
    while "FailedScheduling" not in reasons and time.monotonic() < deadline:
        reasons = [
            e.reason for e in api.list_namespaced_event(NS, field_selector="involvedObject.name=stuck").items
        ]
        time.sleep(0.2)
    assert "FailedScheduling" in reasons
    assert api.read_namespaced_pod("stuck", NS).status.phase == "Pending"
    api.delete_namespaced_pod("stuck", NS)


def test_kube_double_preempt_fault_deletes_the_pod_and_leaves_a_preempted_event(
    double: dict[str, Any],
) -> None:
    api = double["api"]
    spec = pod("victim", ["sleep", "300"])
    spec["metadata"]["annotations"] = {"script-runner.local/fault": "preempt,after=0.5"}
    spec["spec"]["terminationGracePeriodSeconds"] = 1
    api.create_namespaced_pod(NS, spec)
    deadline = time.monotonic() + 20
    gone = False
    while not gone and time.monotonic() < deadline:
        try:
            api.read_namespaced_pod("victim", NS)
            time.sleep(0.2)
        except ApiException as exc:
            gone = exc.status == 404
    assert gone, "a preempted pod is deleted"
    events = api.list_namespaced_event(NS, field_selector="involvedObject.name=victim").items
    assert "Preempted" in [e.reason for e in events]
    assert admin(double["url"], "GET", "/_double/state")["running"] == []


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        pytest.param("a=1", {"a": "1"}, True, id="eq"),
        pytest.param("a==1", {"a": "2"}, False, id="eqeq-miss"),
        pytest.param("a!=1", {}, True, id="neq-absent"),
        pytest.param("a in (1, 2),b", {"a": "2", "b": ""}, True, id="in-and-exists"),
        pytest.param("a notin (1)", {"a": "1"}, False, id="notin"),
        pytest.param("!a", {"a": "1"}, False, id="not-exists"),
        pytest.param("", {"x": "y"}, True, id="empty"),
    ],
)
def test_kube_double_label_matcher(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert label_matcher(selector)({"metadata": {"labels": labels}}) is expected


def test_kube_double_field_matcher() -> None:
    obj = {"metadata": {"name": "p"}, "status": {"phase": "Running"}}
    assert field_matcher("metadata.name=p,status.phase!=Failed")(obj)
    assert not field_matcher("status.phase=Succeeded")(obj)


def test_kube_double_node_shutdown_fault_leaves_a_terminated_pod_that_policy_reschedules(
    double: dict[str, Any],
) -> None:
    from script_runner.run.policy import Status, classify

    api = double["api"]
    spec = pod("spot", ["sleep", "300"])
    spec["metadata"]["annotations"] = {"script-runner.local/fault": "node_shutdown,after=0.5"}
    api.create_namespaced_pod(NS, spec)
    ended = wait_phase(api, "spot", {"Succeeded", "Failed"})
    assert ended.status.phase == "Failed"
    assert ended.status.reason == "Terminated"
    assert ended.status.message == "Pod was terminated in response to imminent node shutdown."
    disruption = [c for c in ended.status.conditions if c.type == "DisruptionTarget"]
    assert [(c.status, c.reason) for c in disruption] == [("True", "TerminationByKubelet")]
    assert ended.status.container_statuses[0].state.terminated.exit_code == 143  # SIGTERM, stopped in time
    outcome = classify(ended, None)
    assert outcome.status is Status.EVICTED
    assert outcome.reason.startswith("TerminationByKubelet: ")
    api.delete_namespaced_pod("spot", NS, grace_period_seconds=0)


def test_kube_double_tallies_requests_by_route_and_starts_again_on_delete(double: dict[str, Any]) -> None:
    admin(double["url"], "DELETE", "/_double/requests")
    api = double["api"]
    api.create_namespaced_pod(NS, pod("tally-1", ["true"]))
    api.read_namespaced_pod("tally-1", NS)
    api.read_namespaced_pod("tally-1", NS)
    counted = admin(double["url"], "GET", "/_double/requests")
    read = counted["GET /api/v1/namespaces/{ns}/pods/{name}"]
    assert counted["POST /api/v1/namespaces/{ns}/pods"]["count"] == 1
    assert read["count"] == 2  # named by route, not by pod
    assert read["bytes"] > 200  # two full pods
    assert not any(key.split()[1].startswith("/_double/") for key in counted)
    assert admin(double["url"], "DELETE", "/_double/requests") == counted
    assert admin(double["url"], "GET", "/_double/requests") == {}
