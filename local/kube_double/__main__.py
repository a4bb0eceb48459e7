"""``python -m local.kube_double``: serve the API, run the kubelet, write a kubeconfig, stop cleanly."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from local.kube_double import admission, namespaces, profiles, runtime
from local.kube_double.api import make_app
from local.kube_double.faults import Faults
from local.kube_double.kubelet import Kubelet
from local.kube_double.metadata import MetadataServer
from local.kube_double.store import Store

log = logging.getLogger("kube_double")
SAVED = "cluster.json"  # in the state dir: the objects and running containers kept across a restart


def _pairs(values: list[str], sep: str) -> list[tuple[str, str]]:
    out = []
    for value in values:
        a, _, b = value.partition(sep)
        out.append((a, b or a))
    return out


def kubeconfig(host: str, port: int, namespace: str) -> str:
    """A kubeconfig for the double (plain http, a dummy token)."""
    return f"""apiVersion: v1
kind: Config
clusters:
- name: local-double
  cluster:
    server: http://{host}:{port}
contexts:
- name: local-double
  context:
    cluster: local-double
    namespace: {namespace}
    user: local-double
current-context: local-double
users:
- name: local-double
  user:
    token: local-double-token
"""


def namespace_labels(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """The namespaces that exist at start, with their labels.

    "default" and the kubeconfig namespace always exist; the kubeconfig namespace enforces
    ``--pod-security``; ``--namespace-label NS:KEY=VALUE`` adds namespaces and labels;
    ``--namespace-profile NS:PROFILE`` gives NS an admission profile (and the restricted level, as the
    platforms it stands for enforce at least that).
    """
    out: dict[str, dict[str, str]] = {"default": {}, args.namespace: {}}
    if args.pod_security != "privileged":
        out[args.namespace][admission.ENFORCE_LABEL] = args.pod_security
    for item in args.namespace_label:
        name, _, pair = item.partition(":")
        key, _, value = pair.partition("=")
        out.setdefault(name, {})
        if key:
            out[name][key] = value
    for item in args.namespace_profile:
        name, _, profile = item.partition(":")
        if profile not in profiles.PROFILES:
            raise SystemExit(
                f"kube double: --namespace-profile {item!r}: use NS:{'|NS:'.join(profiles.PROFILES)}"
            )
        labels = out.setdefault(name, {})
        labels[profiles.PROFILE_LABEL] = profile
        labels.setdefault(admission.ENFORCE_LABEL, "restricted")
    return out


async def choose_mode(args: argparse.Namespace, config: runtime.RuntimeConfig) -> str:
    if args.kubelet == "process":
        return "process"
    if not config.default_image:
        reason = "no --default-image to run"
        ok = False
    else:
        ok, reason = await runtime.podman_works(config.default_image, config)
    if ok:
        return "podman"
    if args.kubelet == "podman":
        raise SystemExit(f"kube double: --kubelet podman requested but {reason}")
    log.warning(
        "kubelet: podman cannot run containers here (%s); FALLING BACK TO PROCESSES: pods run as "
        "plain local processes, resource limits are NOT enforced",
        reason,
    )
    return "process"


async def serve(args: argparse.Namespace) -> None:
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    (state / "ready").unlink(missing_ok=True)
    config = runtime.RuntimeConfig(
        state_dir=state,
        default_image=args.default_image,
        image_map=dict(_pairs(args.image_map, "=")),
        mounts=_pairs(args.mount, ":"),
        path_map=dict(_pairs(args.path_map, "=")),
        containers_conf=args.containers_conf,
    )
    config.mode = await choose_mode(args, config)
    if config.mode == "process":
        log.warning("kubelet: process mode, resource limits not enforced")
    saved = _load_saved(state)
    keep = {str(h["uid"]) for h in saved.get("containers", [])}
    removed = await runtime.cleanup_leftovers(config, keep)
    if removed:
        log.warning("removed %d container(s) left by an earlier double", removed)
    store, faults = Store(history=args.watch_history), Faults.load(args.faults)
    for name, labels in namespace_labels(args).items():
        namespaces.seed(store, name, labels)
    if saved:
        store.restore(saved.get("store") or {})
    metadata = None
    if args.identity_dir:
        # Local Workload Identity: every pod asks the metadata server for its service account's token.
        metadata = MetadataServer(Path(args.identity_dir).resolve(), project_id=args.project_id)
        await metadata.start()
    kubelet = Kubelet(store, config, faults, metadata)
    if saved:
        kubelet.restore_logs(saved.get("logs") or {})
        adopted = await kubelet.adopt(list(saved.get("containers") or []))
        log.warning(
            "restarted: %d pod(s) and %d event(s) restored, %d running container(s) re-adopted",
            len(store.objects["pods"]),
            len(store.objects["events"]),
            adopted,
        )
    kubelet.start()
    app = make_app(store, kubelet, faults)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    (state / "kubeconfig").write_text(kubeconfig(args.host, args.port, args.namespace))
    (state / "mode").write_text(config.mode + "\n")
    (state / "ready").write_text("ok\n")
    log.info(
        "kube double on http://%s:%d, kubelet=%s, kubeconfig %s",
        args.host,
        args.port,
        config.mode,
        state / "kubeconfig",
    )
    stop = asyncio.Event()
    restart = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def for_restart() -> None:
        restart.set()
        stop.set()

    loop.add_signal_handler(signal.SIGUSR1, for_restart)
    await stop.wait()
    (state / "ready").unlink(missing_ok=True)
    if restart.is_set():
        # The API server (and its kubelet) goes down; the node's containers run on under their monitors
        # and the objects are kept, as etcd keeps them: a double started again carries on from here.
        _save(state, store.snapshot(), kubelet.saved_handles(), kubelet.saved_logs())
        log.info("stopping for a restart: %d running container(s) left running", len(kubelet.running()))
    else:
        log.info("stopping: killing %d running container(s)", len(kubelet.running()))
        (state / SAVED).unlink(missing_ok=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(kubelet.shutdown(), timeout=8)
    if metadata is not None:
        await metadata.stop()
    await runner.cleanup()


def _save(state: Path, store: dict[str, Any], containers: list[dict[str, Any]], logs: dict[str, Any]) -> None:
    tmp = state / (SAVED + ".tmp")
    tmp.write_text(json.dumps({"store": store, "containers": containers, "logs": logs}))
    tmp.replace(state / SAVED)


def _load_saved(state: Path) -> dict[str, Any]:
    """What a double stopped for a restart saved (read once: a later start begins empty)."""
    path = state / SAVED
    try:
        saved: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    path.unlink(missing_ok=True)
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local.kube_double", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--state-dir", default="local/.run/kube")
    parser.add_argument("--namespace", default="composer-user-workloads", help="kubeconfig default namespace")
    parser.add_argument("--kubelet", choices=["auto", "podman", "process"], default="auto")
    parser.add_argument("--default-image", help="local image every pod runs (podman mode)")
    parser.add_argument("--image-map", action="append", default=[], metavar="SRC=DST")
    parser.add_argument(
        "--mount", action="append", default=[], metavar="HOST[:CTR]", help="read-only bind mount"
    )
    parser.add_argument(
        "--path-map",
        action="append",
        default=[],
        metavar="SRC=DST",
        help="process mode: rewrite a command path prefix",
    )
    parser.add_argument("--containers-conf", help="CONTAINERS_CONF for podman")
    parser.add_argument("--faults", help="JSON file with fault rules")
    parser.add_argument(
        "--identity-dir",
        help="DIR/<service account>.token|.email: the identity the local metadata server hands each pod "
        "(GCE_METADATA_HOST), by its spec.serviceAccountName; none: no metadata server",
    )
    parser.add_argument("--project-id", default="test-project", help="what the metadata server's project is")
    parser.add_argument(
        "--pod-security",
        choices=admission.LEVELS,
        default="restricted",
        help="Pod Security level the kubeconfig namespace enforces",
    )
    parser.add_argument(
        "--namespace-label",
        action="append",
        default=[],
        metavar="NS:KEY=VALUE",
        help="create namespace NS at start (with a label if KEY=VALUE is given)",
    )
    parser.add_argument(
        "--namespace-profile",
        action="append",
        default=[],
        metavar="NS:PROFILE",
        help=f"create namespace NS with an admission profile ({', '.join(profiles.PROFILES)})",
    )
    parser.add_argument(
        "--watch-history", type=int, default=20_000, help="changes kept for watches (older: 410 Expired)"
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
