"""The stack's Kubernetes: the Kubernetes double's start and restart, and the host processes its process
kubelet's pods left behind.

Imports :mod:`local.config`, :mod:`local.processes` and :mod:`local.pod_env` (the folder pods mount); runs
``python -m local.kube_double`` (:mod:`local.kube_double`) as a process, never imports it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local import config
from local.pod_env import pod_files
from local.processes import alive, log, pidfile, spawn, wait_for

SDK = Path("/usr/lib/google-cloud-sdk")


def start_kube() -> None:
    if alive("kube"):
        return
    state = config.RUN / "kube"
    state.mkdir(parents=True, exist_ok=True)
    (state / "ready").unlink(missing_ok=True)
    mode = os.environ.get("SR_KUBELET", "auto")
    cmd = [
        sys.executable,
        "-m",
        "local.kube_double",
        "--port",
        str(config.PORTS.kube),
        "--state-dir",
        str(state),
        "--kubelet",
        mode,
        "--default-image",
        os.environ.get("SR_IMAGE", "localhost/script-runner:local"),
        "--path-map",
        f"/opt/runner={config.ROOT / 'runner_image'}",
        "--containers-conf",
        str(config.ROOT / "local" / "image" / "containers.conf"),
        # The CA certificate and gsutil's boto file (see pod_files): what a real image has built in.
        "--mount",
        f"{pod_files()}:{pod_files()}",
        # Identity: the double's metadata server hands each pod its service account's token (pods that
        # name none run as `default`, the environment's identity); no token file is mounted in pods.
        "--identity-dir",
        str(config.RUN / "iam" / "tokens"),
    ]
    if SDK.is_dir():
        # gsutil, gcloud and bq: the Google Cloud SDK the production image installs from Google's apt
        # repository, which this machine cannot reach (local/image/build.sh).
        cmd += ["--mount", f"{SDK}:{SDK}"]
    faults = os.environ.get("SR_FAULTS")
    if faults:
        cmd += ["--faults", faults]
    spawn("kube", cmd)
    wait_for("Kubernetes double", lambda: (state / "ready").exists(), 120, "kube")
    kubelet = (state / "mode").read_text().strip()
    log(f"Kubernetes double on http://127.0.0.1:{config.PORTS.kube}, kubelet={kubelet}")
    if kubelet != "podman" and mode == "auto":
        lines = (config.LOGS / "kube.log").read_text(errors="replace").splitlines()
        reason = next((ln for ln in lines if "FALLING BACK" in ln), "podman cannot run containers here")
        log(
            "WARNING: pods run as plain processes, NOT containers: no isolation, memory limits not "
            f"enforced; container-only tests will be skipped. ({reason.strip()[-300:]})"
        )


def restart_kube(timeout: float = 20) -> None:
    """Restart the Kubernetes double as a cluster's API server restarts: pods run on, objects are kept.

    SIGUSR1 makes the double save its objects and leave its containers running (each under its own
    monitor); the double started again re-adopts them. ``stop("kube")`` (SIGTERM) ends the pods too.
    """
    pid = alive("kube")
    if pid is None:
        raise RuntimeError("the Kubernetes double is not running")
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while alive("kube") and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive("kube"):
        raise RuntimeError(f"the Kubernetes double did not stop for its restart in {timeout:.0f}s")
    pidfile("kube").unlink(missing_ok=True)
    start_kube()


@dataclass(frozen=True)
class PodProcess:
    """A host process that belongs to a pod of the process kubelet."""

    pid: int
    cmdline: str  # its argv joined by spaces
    cwd: str

    def __str__(self) -> str:
        return f"{self.pid}: {self.cmdline.strip()[:120]} (cwd {self.cwd})"


def pod_processes(*, run_dir: Path | None = None, entrypoint: Path | None = None) -> list[PodProcess]:
    """Host processes of the process kubelet's pods, read from /proc: those working in a pod's work dir
    (``RUN/kube/pod-*``) or running this clone's runner entrypoint. What a pod left behind after it ended.

    :param run_dir: the stack's run directory (default: ``RUN``).
    :param entrypoint: the entrypoint to look for (default: this clone's ``runner_image/entrypoint``; another
        clone's stack, or its bats run, on the same host is not ours).
    :return: the matching processes, the ones that vanish while being read left out.
    """
    pod_dirs = str(((run_dir or config.RUN) / "kube").resolve()) + "/pod-"
    runner = str((entrypoint or config.ROOT / "runner_image" / "entrypoint").resolve())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(pod_dirs) or runner in cmdline:
            found.append(PodProcess(pid=int(proc.name), cmdline=cmdline, cwd=cwd))
    return found
