from __future__ import annotations

import time
from pathlib import Path

from kubernetes.client import models as k8s

from script_runner.run.usage import parse_end_line, read_pod_usage
from tests.unit.local.kube_double_process import running_double

ROOT = Path(__file__).resolve().parents[4]
NS = "composer-user-workloads"
END = "[runner] ts=2026-11-30T10:00:00Z level=info event=end script=a.sh exit=0 secs=4 reason=ok"


def test_usage_parses_cgroup_figures_from_the_end_line() -> None:
    text = f"working\n{END} cpu_secs=1.234 mem_peak=325058560 usage=cgroup\n"
    assert parse_end_line(text) == {
        "cpu_secs": 1.234,
        "mem_peak_bytes": 325058560,
        "usage": "cgroup",
        "end_reason": "ok",
        "entry_secs": 4,
    }


def test_usage_takes_the_last_end_line_and_allows_no_peak() -> None:
    text = f"{END} cpu_secs=9.000 mem_peak=1 usage=cgroup\n{END} cpu_secs=0.250 usage=rusage"
    assert parse_end_line(text) == {"cpu_secs": 0.25, "usage": "rusage", "end_reason": "ok", "entry_secs": 4}


def test_usage_is_empty_without_an_end_line_or_with_garbage() -> None:
    assert parse_end_line("echo event=endless\nKilled\n") == {}
    assert parse_end_line(f"{END}\n") == {}  # an older image: no usage on its end line
    assert parse_end_line(f"{END} cpu_secs=lots usage=cgroup") == {}
    # a script's own line cannot pass as the end line when the real one follows
    text = f"script says event=end cpu_secs=99.0 usage=cgroup\n{END} cpu_secs=0.100 usage=rusage"
    assert parse_end_line(text)["cpu_secs"] == 0.1


def test_usage_reads_the_end_line_of_a_finished_pod_from_the_api(tmp_path: Path) -> None:
    script = tmp_path / "busy.sh"
    script.write_text("for ((i = 0; i < 200000; i++)); do :; done\necho done\n")
    container = {
        "name": "base",
        "image": "x",
        "command": [str(ROOT / "runner_image" / "entrypoint")],
        "env": [
            {"name": "RUNNER_SCRIPT_URI", "value": script.as_uri()},
            {"name": "RUNNER_SCRIPT_PATH", "value": "busy.sh"},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "busy"},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }
    with running_double(tmp_path / "kube") as double:
        api = double["api"]
        api.create_namespaced_pod(NS, body)
        deadline = time.monotonic() + 30
        while api.read_namespaced_pod("busy", NS).status.phase not in ("Succeeded", "Failed"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        pod = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="busy", namespace=NS))
        usage = read_pod_usage(api, pod)
        missing = read_pod_usage(api, k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="gone", namespace=NS)))
    # The process kubelet shares the machine's cgroup: CPU from rusage, and no peak memory is claimed.
    assert usage["usage"] == "rusage"
    assert usage["cpu_secs"] >= 0.05
    assert "mem_peak_bytes" not in usage
    assert missing == {}
