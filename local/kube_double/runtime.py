"""Container runtimes for the kubelet: a real podman container, or a plain process as the fallback."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from kubernetes.utils.quantity import parse_quantity

log = logging.getLogger("kube_double.runtime")
CONTAINER_LABEL = "kube-double.local/pod-uid"
# Which double started a container (a hash of its state dir): a double cleans up only its own leftovers,
# never the running pods of another double on the same machine (another clone's stack or test).
INSTANCE_LABEL = "kube-double.local/instance"
RUNNER_UID = "10001"
SHIM = Path(__file__).with_name("shim.py")
SHIM_START_SECONDS = 30.0


@dataclass
class Handle:
    """A started container: its first process (podman run, or the command itself) and what we did to it.

    The process runs under a shim (``shim.py``) that outlives the double: its pid, timestamped log and exit
    code are files in ``folder``, so a double started again re-adopts it (:meth:`record`, :func:`adopt`).
    """

    uid: str
    pid: int
    name: str
    folder: Path
    killed_by_us: bool = False
    memory_limited: bool = False
    workdir: Path | None = None
    cid_file: Path | None = None  # podman: where `podman run --cidfile` wrote the container id
    exit_code: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    shim: asyncio.subprocess.Process | None = None  # None once re-adopted: not our child any more

    def record(self) -> dict[str, Any]:
        """What a later double needs to re-adopt this container."""
        return {
            "uid": self.uid,
            "pid": self.pid,
            "name": self.name,
            "folder": str(self.folder),
            "killed_by_us": self.killed_by_us,
            "memory_limited": self.memory_limited,
            "workdir": str(self.workdir) if self.workdir else None,
            "cid_file": str(self.cid_file) if self.cid_file else None,
        }


def adopt(record: dict[str, Any]) -> Handle:
    """A handle for a container an earlier double started (see :meth:`Handle.record`).

    :param record: the saved record.
    """
    return Handle(
        uid=str(record["uid"]),
        pid=int(record["pid"]),
        name=str(record["name"]),
        folder=Path(record["folder"]),
        killed_by_us=bool(record.get("killed_by_us")),
        memory_limited=bool(record.get("memory_limited")),
        workdir=Path(record["workdir"]) if record.get("workdir") else None,
        cid_file=Path(record["cid_file"]) if record.get("cid_file") else None,
    )


async def _start_shimmed(
    cmd: list[str], *, folder: Path, env: dict[str, str], cwd: str | None = None
) -> tuple[int, asyncio.subprocess.Process]:
    """Start ``cmd`` under the shim; its pid once the shim wrote it."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",  # isolated: the shim's folder holds a selectors.py that would shadow the standard library's
        str(SHIM),
        str(folder),
        "--",
        *cmd,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SHIM_START_SECONDS
    while not (folder / "pid").exists():
        if shim.returncode is not None or loop.time() > deadline:
            raise RuntimeError(f"the container monitor did not start {cmd[0]} (exit {shim.returncode})")
        await asyncio.sleep(0.02)
    return int((folder / "pid").read_text()), shim


@dataclass
class RuntimeConfig:
    """How to run pods: mode and the local mappings (image, mounts, path prefixes)."""

    mode: str = "process"
    state_dir: Path = Path("/tmp/kube-double")
    default_image: str | None = None
    image_map: dict[str, str] = field(default_factory=dict)
    mounts: list[tuple[str, str]] = field(default_factory=list)
    path_map: dict[str, str] = field(default_factory=dict)
    containers_conf: str | None = None

    @property
    def instance(self) -> str:
        """This double's value of ``INSTANCE_LABEL``."""
        return hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:16]


def container_of(pod: dict[str, Any]) -> dict[str, Any]:
    """The main container: named 'base' (KPO's) or the first one."""
    containers = pod["spec"]["containers"]
    return next((c for c in containers if c.get("name") == "base"), containers[0])


def pod_env(pod: dict[str, Any]) -> dict[str, str]:
    """The container's env: values, and fieldRef for the pod's own metadata."""
    out: dict[str, str] = {}
    meta = pod["metadata"]
    for item in container_of(pod).get("env") or []:
        if "value" in item:
            out[item["name"]] = str(item["value"] or "")
            continue
        ref = (item.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath", "")
        out[item["name"]] = {
            "metadata.name": meta["name"],
            "metadata.namespace": meta["namespace"],
            "metadata.uid": meta.get("uid", ""),
            "spec.nodeName": "local-node",
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        }.get(ref, "")
    return out


def limits(pod: dict[str, Any]) -> dict[str, str]:
    """The main container's resource limits."""
    return dict((container_of(pod).get("resources") or {}).get("limits") or {})


def _command(pod: dict[str, Any], path_map: dict[str, str]) -> list[str]:
    container = container_of(pod)
    cmd = [*(container.get("command") or []), *(container.get("args") or [])]
    if not cmd:
        raise ValueError("the double needs an explicit command (it cannot read image entrypoints)")
    for src, dst in path_map.items():
        cmd = [dst + c[len(src) :] if c.startswith(src) else c for c in cmd]
    return cmd


async def start(
    pod: dict[str, Any], config: RuntimeConfig, extra_env: dict[str, str] | None = None
) -> Handle:
    """Start the pod's main container in the configured mode.

    :param extra_env: env the node adds (the metadata server's address, ``GCE_METADATA_*``), under the
        pod's own env. Identity reaches a pod only that way: no token file, no env naming the host.
    """
    if config.mode == "podman":
        return await _start_podman(pod, config, extra_env or {})
    return await _start_process(pod, config, extra_env or {})


async def _start_process(pod: dict[str, Any], config: RuntimeConfig, extra_env: dict[str, str]) -> Handle:
    uid = pod["metadata"]["uid"]
    workdir = Path(tempfile.mkdtemp(prefix=f"pod-{pod['metadata']['name'][:40]}-", dir=config.state_dir))
    (workdir / "work").mkdir()
    (workdir / "tmp").mkdir()
    # The pod's /tmp emptyDir is its own folder here too: an env value under /tmp (gcloud's
    # CLOUDSDK_CONFIG=/tmp/gcloud-config) must not be shared with other pods through the host's /tmp.
    # (A --mount under /tmp stays where it is, as a bind mount inside the emptyDir would.)
    own_tmp = str(workdir / "tmp")
    mounted = tuple(ctr.rstrip("/") + "/" for _, ctr in config.mounts)
    spec_env = {
        key: own_tmp + value[4:]
        if (value == "/tmp" or value.startswith("/tmp/")) and not value.startswith(mounted)
        else value
        for key, value in pod_env(pod).items()
    }
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir / "work"),
        "LANG": "C.UTF-8",
        **extra_env,
        **spec_env,
        "RUNNER_WORKDIR": str(workdir / "work"),
        "TMPDIR": own_tmp,
    }
    pid, shim = await _start_shimmed(
        _command(pod, config.path_map), folder=workdir / "container", env=env, cwd=str(workdir / "work")
    )
    return Handle(
        uid=uid, pid=pid, name=f"pid-{pid}", folder=workdir / "container", workdir=workdir, shim=shim
    )


def _podman_base(config: RuntimeConfig) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if config.containers_conf:
        env["CONTAINERS_CONF"] = config.containers_conf
    return ["podman"], env


def _cpus(value: str) -> str:
    return str(Decimal(parse_quantity(value)))


async def _start_podman(pod: dict[str, Any], config: RuntimeConfig, extra_env: dict[str, str]) -> Handle:
    meta, spec = pod["metadata"], pod["spec"]
    container = container_of(pod)
    image = config.image_map.get(
        container.get("image", ""), config.default_image or container.get("image", "")
    )
    name = f"kd-{meta['uid'][:18]}"
    cid_file = config.state_dir / f"{name}.cid"
    cid_file.unlink(missing_ok=True)
    args = [
        "run",
        "--rm",
        "--cidfile",
        str(cid_file),
        "--name",
        name,
        "--label",
        f"{CONTAINER_LABEL}={meta['uid']}",
        "--label",
        f"{INSTANCE_LABEL}={config.instance}",
        "--network",
        "host",
        "--ulimit",
        "nofile=4096:4096",
        "--ulimit",
        "nproc=4096:4096",
        "--pull",
        "never",
    ]
    lim = limits(pod)
    if "memory" in lim:
        args += [
            "--memory",
            str(int(parse_quantity(lim["memory"]))),
            "--memory-swap",
            str(int(parse_quantity(lim["memory"]))),
        ]
    if "cpu" in lim:
        args += ["--cpus", _cpus(lim["cpu"])]
    sec = {**(spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
    user = str(sec.get("runAsUser", RUNNER_UID))
    args += ["--user", f"{user}:{sec.get('runAsGroup', user)}"]
    if sec.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if sec.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    if "ALL" in ((sec.get("capabilities") or {}).get("drop") or []):
        args += ["--cap-drop", "ALL"]
    empty_dirs = {v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v}
    for mount in container.get("volumeMounts") or []:
        if mount["name"] in empty_dirs:
            # U: owned by the container user, like an emptyDir the pod can write (podman ignores mode= here)
            args += ["--tmpfs", f"{mount['mountPath']}:rw,exec,U"]
    for host, ctr in config.mounts:
        args += ["-v", f"{host}:{ctr}:ro"]
    # The container's env is its spec's env plus what the node adds (the metadata server's address):
    # nothing of the host's environment, no host path.
    for key, value in {**extra_env, **pod_env(pod)}.items():
        args += ["-e", f"{key}={value}"]
    command = [*(container.get("command") or []), *(container.get("args") or [])]
    if command:
        args += ["--entrypoint", command[0], image, *command[1:]]
    else:
        args.append(image)
    base, env = _podman_base(config)
    folder = config.state_dir / "containers" / meta["uid"]
    pid, shim = await _start_shimmed([*base, *args], folder=folder, env=env)
    return Handle(
        uid=meta["uid"],
        pid=pid,
        name=name,
        folder=folder,
        memory_limited="memory" in lim,
        shim=shim,
        cid_file=cid_file,
    )


async def stop(handle: Handle, config: RuntimeConfig, *, grace: float, hard: bool = False) -> None:
    """SIGTERM (or SIGKILL when ``hard``), then SIGKILL after ``grace`` seconds."""
    handle.killed_by_us = True
    sig = signal.SIGKILL if hard else signal.SIGTERM
    if config.mode == "podman":
        base, env = _podman_base(config)
        await _quiet(*base, "kill", "--signal", sig.name, handle.name, env=env)
    else:
        # As a container runtime does: SIGTERM to the pod's first process only (it forwards it to its
        # children); SIGKILL to everything. Signalling the whole group sent the script a second TERM (the
        # entrypoint's forward) that killed its on_exit hooks half-way.
        with contextlib.suppress(ProcessLookupError):
            if hard:
                os.killpg(handle.pid, sig)
            else:
                os.kill(handle.pid, sig)
    try:
        await asyncio.wait_for(handle.done.wait(), timeout=max(grace, 0.1))
    except TimeoutError:
        if config.mode == "podman":
            base, env = _podman_base(config)
            await _quiet(*base, "rm", "-f", "-t", "0", handle.name, env=env)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(handle.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(handle.done.wait(), timeout=10)
    if config.mode != "podman":
        # The first process is gone: as with a container's PID namespace, nothing of the pod outlives it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(handle.pid, signal.SIGKILL)


async def cleanup_leftovers(config: RuntimeConfig, keep: set[str] | None = None) -> int:
    """Remove containers a previous double with this state dir left behind (found by label), except those
    of pods in ``keep``.

    :param keep: uids of pods re-adopted from the saved cluster state.
    """
    if config.mode != "podman":
        return 0
    base, env = _podman_base(config)
    proc = await asyncio.create_subprocess_exec(
        *base,
        "ps",
        "-a",
        "--format",
        f'{{{{.ID}}}} {{{{index .Labels "{CONTAINER_LABEL}"}}}}',
        "--filter",
        f"label={INSTANCE_LABEL}={config.instance}",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    ids = [
        line.split()[0]
        for line in out.decode().splitlines()
        if line.split() and (len(line.split()) < 2 or line.split()[1] not in (keep or set()))
    ]
    if ids:
        await _quiet(*base, "rm", "-f", "-t", "0", *ids, env=env)
    return len(ids)


async def podman_works(image: str, config: RuntimeConfig) -> tuple[bool, str]:
    """Can podman run the image here? (False with the reason when not.)"""
    base, env = _podman_base(config)
    try:
        proc = await asyncio.create_subprocess_exec(
            *base,
            "run",
            "--rm",
            "--pull",
            "never",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--entrypoint",
            "true",
            image,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except FileNotFoundError:
        return False, "podman is not installed"
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        return False, "podman run timed out"
    if proc.returncode != 0:
        return False, f"podman run {image} failed: {out.decode(errors='replace').strip()[-300:]}"
    return True, "ok"


async def _quiet(*cmd: str, env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), timeout=30)
