"""The kubelet's own view of a pod's usage (GET /_double/usage), and the entrypoint's end line against it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import models as k8s

from script_runner.run.usage import read_pod_usage
from tests.unit.local.kube_double_process import running_double

ROOT = Path(__file__).resolve().parents[3]
NS = "composer-user-workloads"
IMAGE = os.environ.get("SR_IMAGE", "localhost/script-runner:local")
CONF = str(ROOT / "local" / "image" / "containers.conf")
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _pod(
    name: str, command: list[str], env: dict[str, str] | None = None, memory: str = ""
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "base",
        "image": IMAGE,
        "command": command,
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "securityContext": dict(RESTRICTED),
    }
    if memory:
        container["resources"] = {
            "limits": {"memory": memory, "cpu": "1"},
            "requests": {"memory": memory, "cpu": "1"},
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }


def _finish(api: client.CoreV1Api, name: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while (phase := api.read_namespaced_pod(name, NS).status.phase) not in ("Succeeded", "Failed"):
        assert time.monotonic() < deadline, f"{name} still {phase}"
        time.sleep(0.2)
    return str(phase)


def _usage(url: str, name: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_double/usage", timeout=10) as resp:
        rows = json.loads(resp.read())
    return next(row for row in rows if row["name"] == name)


def test_kube_double_process_kubelet_samples_a_pods_memory_and_cpu(tmp_path: Path) -> None:
    hog = "x = bytearray(60_000_000); n = 0\nfor i in range(3_000_000): n += i\nimport time; time.sleep(1.5)"
    with running_double(tmp_path / "kube") as double:
        double["api"].create_namespaced_pod(NS, _pod("hog", ["python3", "-c", hog]))
        assert _finish(double["api"], "hog") == "Succeeded"
        usage = _usage(double["url"], "hog")
    assert usage["source"] == "procfs"
    assert usage["final"] is True
    assert usage["peak_memory_bytes"] >= 60_000_000
    assert usage["cpu_secs"] > 0.05
    assert usage["samples"] >= 3


def _podman_ready() -> str:
    if shutil.which("podman") is None:
        return "podman is not installed"
    found = subprocess.run(
        ["podman", "image", "exists", IMAGE],
        env={**os.environ, "CONTAINERS_CONF": CONF},
        timeout=60,
        check=False,
    )
    return "" if found.returncode == 0 else f"the local image {IMAGE} is not built (make image)"


@pytest.mark.skipif(bool(_podman_ready()), reason=_podman_ready() or "podman ready")
def test_kube_double_podman_kubelet_and_the_end_line_agree_on_a_containers_peak(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "hog.sh").write_text('x="$(head -c 40000000 /dev/zero | tr "\\0" a)"; sleep 2; echo "${#x}"\n')
    scripts.chmod(0o755)
    (scripts / "hog.sh").chmod(0o644)
    runner = f"{ROOT / 'runner_image'}:/opt/runner"  # this checkout's entrypoint and library, not the image's
    extra = ["--kubelet", "podman", "--default-image", IMAGE, "--containers-conf", CONF]
    extra += ["--mount", runner, "--mount", f"{scripts}:/in"]
    env = {"RUNNER_SCRIPT_URI": "file:///in/hog.sh", "RUNNER_SCRIPT_PATH": "hog.sh"}
    with running_double(tmp_path / "kube", *extra) as double:
        api = double["api"]
        api.create_namespaced_pod(NS, _pod("hog", ["/opt/runner/entrypoint"], env, memory="256Mi"))
        assert _finish(api, "hog") == "Succeeded"
        node = _usage(double["url"], "hog")
        pod = read_pod_usage(api, k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="hog", namespace=NS)))
        api.delete_namespaced_pod("hog", NS)
    assert node["source"] == "cgroup"
    assert pod["usage"] == "cgroup"
    limit = 256 * 1024**2
    # The node samples the same cgroup while the pod runs; the entrypoint reads it last: never less.
    assert 40_000_000 <= node["peak_memory_bytes"] <= pod["mem_peak_bytes"] < limit
    assert pod["mem_peak_bytes"] - node["peak_memory_bytes"] < 16 * 1024**2
    assert 0 < node["cpu_secs"] <= pod["cpu_secs"] + 0.05


@pytest.mark.skipif(bool(_podman_ready()), reason=_podman_ready() or "podman ready")
def test_kube_double_cleans_up_only_its_own_leftover_containers(tmp_path: Path) -> None:
    import asyncio

    from local.kube_double import runtime

    env = {**os.environ, "CONTAINERS_CONF": CONF}
    mine = runtime.RuntimeConfig(mode="podman", state_dir=tmp_path / "mine", containers_conf=CONF)
    other = runtime.RuntimeConfig(mode="podman", state_dir=tmp_path / "other", containers_conf=CONF)
    names = {}
    for key, config in (("mine", mine), ("other", other)):
        names[key] = f"kd-cleanup-test-{key}-{os.getpid()}"
        subprocess.run(
            ["podman", "run", "-d", "--pull", "never", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
             "--name", names[key], "--label", f"{runtime.CONTAINER_LABEL}=x",
             "--label", f"{runtime.INSTANCE_LABEL}={config.instance}", "--entrypoint", "sleep", IMAGE, "60"],
            env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    try:
        assert asyncio.run(runtime.cleanup_leftovers(mine)) == 1
        left = subprocess.run(
            ["podman", "ps", "-a", "--format", "{{.Names}}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.split()
        assert names["other"] in left  # another double's running pod is not touched
        assert names["mine"] not in left
    finally:
        subprocess.run(
            ["podman", "rm", "-f", "-t", "0", *names.values()], env=env, capture_output=True, timeout=60
        )
