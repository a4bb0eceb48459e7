"""The REST routes: core/v1 pods, pod logs, events (list and watch), discovery, and the admin API."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from local.kube_double import (
    admission,
    defaults,
    namespaces,
    patching,
    profiles,
    statuses,
    tally,
    validation,
)
from local.kube_double.faults import Faults
from local.kube_double.kubelet import Kubelet
from local.kube_double.selectors import field_matcher, label_matcher
from local.kube_double.statuses import status
from local.kube_double.store import Store, Watcher

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("kube_double.api")
STORE: web.AppKey[Store] = web.AppKey("store", Store)
KUBELET: web.AppKey[Kubelet] = web.AppKey("kubelet", Kubelet)
FAULTS: web.AppKey[Faults] = web.AppKey("faults", Faults)
AUDIT: web.AppKey[list[dict[str, Any]]] = web.AppKey("audit", list)
AUDIT_KEPT = 500  # pod creations kept in the admission audit (GET /_double/audit), newest last
ASKED_NS = "asked_namespace"  # the namespace in the request's path, before the profile redirected it
_BACKGROUND: set[asyncio.Task[None]] = set()  # keeps fire-and-forget tasks alive until done


@web.middleware
async def fault_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    rule = request.app[FAULTS].for_request(request.method, request.path)
    if rule is not None:
        if rule["fault"] == "api_timeout":
            await asyncio.sleep(float(rule.get("seconds", 5)))
            return status(504, "Timeout", "injected timeout")
        code = int(rule.get("status", 500))
        log.warning("injected API %s for %s %s", code, request.method, request.path)
        return status(code, "InternalError", f"injected API error {code}")
    response: web.StreamResponse = await handler(request)
    return response


@web.middleware
async def namespace_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Send pod and event requests where the admission profile says pods live (Composer 3's namespace)."""
    asked = request.match_info.get("ns")
    if asked is not None and request.path.startswith("/api/v1/namespaces/") and "/" in request.path[19:]:
        request[ASKED_NS] = asked
        request.match_info["ns"] = profiles.target_namespace(request.app[STORE], asked)
    response: web.StreamResponse = await handler(request)
    return response


def _is_watch(request: web.Request) -> bool:
    return request.query.get("watch", "").lower() in ("1", "true")


def _pod_list(items: list[dict[str, Any]], store: Store, kind: str = "PodList") -> web.Response:
    return web.json_response(
        {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": str(store.rv)}, "items": items}
    )


def _selected(request: web.Request) -> Callable[[dict[str, Any]], bool]:
    """The request's labelSelector and fieldSelector as one match of an object."""
    match_l = label_matcher(request.query.get("labelSelector"))
    match_f = field_matcher(request.query.get("fieldSelector"))
    return lambda o: match_l(o) and match_f(o)


async def _list_or_watch(request: web.Request, kind: str, list_kind: str) -> web.StreamResponse:
    """GET of a collection (``pods``, ``events``): its list, or a watch of it with ``?watch=true``."""
    ns = request.match_info.get("ns")
    if _is_watch(request):
        return await _stream_watch(request, kind, ns)
    store = request.app[STORE]
    return _pod_list(store.list(kind, ns, _selected(request)), store, kind=list_kind)


async def _stream_watch(request: web.Request, kind: str, namespace: str | None) -> web.StreamResponse:
    store = request.app[STORE]
    watcher: Watcher = store.watch(kind, namespace, _selected(request), request.query.get("resourceVersion"))
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    timeout = float(request.query.get("timeoutSeconds", "300"))
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    try:
        while (left := end - loop.time()) > 0:
            try:
                item = await asyncio.wait_for(watcher.queue.get(), timeout=left)
            except TimeoutError:
                break
            if item is None:
                break
            etype, obj = item
            await resp.write(json.dumps({"type": etype, "object": obj}).encode() + b"\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        store.unwatch(watcher)
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


async def list_pods(request: web.Request) -> web.StreamResponse:
    return await _list_or_watch(request, "pods", "PodList")


_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what the API server appends to generateName


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


async def create_pod(request: web.Request) -> web.Response:
    """Create: decode, validate (422), the namespace's admission profile and Pod Security (403), then store
    (409 when it exists)."""
    ns = request.match_info["ns"]
    store = request.app[STORE]
    namespace = store.get("namespaces", "", ns)
    if namespace is None:
        return statuses.not_found("namespaces", ns)
    body = await _json_body(request)
    if not isinstance(body, dict):
        return statuses.bad_request(
            'Pod in version "v1" cannot be handled as a Pod: the body is not an object'
        )
    meta = body.setdefault("metadata", {})
    if meta.get("namespace") not in (None, "", ns, request.get(ASKED_NS, ns)):
        return statuses.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    meta["namespace"] = ns
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
    undecodable = validation.decode_pod(body)
    if undecodable:
        return statuses.bad_request(undecodable)
    errors = validation.pod(body)
    if errors:
        return statuses.invalid("pods", str(meta.get("name") or meta.get("generateName") or ""), errors)
    refused = profiles.admit(body, namespace)
    level = admission.level_of(namespace)
    found = [] if refused else admission.violations(body, level)
    if found:
        refused = admission.forbidden_message(meta["name"], level, found)
    if refused:
        _audit(request, body, 403, refused)
        return statuses.forbidden("pods", meta["name"], refused)
    if store.get("pods", ns, meta["name"]) is not None:
        _audit(request, body, 409, "already exists")
        return statuses.already_exists("pods", meta["name"])
    _audit(request, body, 201, "")
    body.setdefault("apiVersion", "v1")
    body.setdefault("kind", "Pod")
    defaults.default_pod(body)
    pod = store.create("pods", body)
    request.app[KUBELET].wake()
    return web.json_response(copy.deepcopy(pod), status=201)


def _audit(request: web.Request, pod: dict[str, Any], code: int, message: str) -> None:
    """Record what admission made of a pod and the answer (kept after the pod is deleted)."""
    meta = pod.get("metadata") or {}
    log_ = request.app[AUDIT]
    log_.append(
        {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "asked_namespace": request.get(ASKED_NS, meta.get("namespace")),
            "profile": profiles.profile_of(
                request.app[STORE].get("namespaces", "", meta.get("namespace", ""))
            ),
            "code": code,
            "message": message,
            "annotations": copy.deepcopy(meta.get("annotations") or {}),
            "resources": {
                c.get("name"): copy.deepcopy(c.get("resources") or {})
                for c in (pod.get("spec") or {}).get("containers") or []
            },
        }
    )
    del log_[:-AUDIT_KEPT]


def _get(request: web.Request) -> dict[str, Any] | None:
    return request.app[STORE].get("pods", request.match_info["ns"], request.match_info["name"])


def _not_found(request: web.Request) -> web.Response:
    return statuses.not_found("pods", request.match_info["name"])


async def read_pod(request: web.Request) -> web.Response:
    pod = _get(request)
    return web.json_response(copy.deepcopy(pod)) if pod else _not_found(request)


async def patch_pod(request: web.Request) -> web.Response:
    """Patch: apply to a copy, check the version precondition (409) and the update rules (422), store."""
    pod = _get(request)
    if pod is None:
        return _not_found(request)
    name = request.match_info["name"]
    try:
        updated = patching.apply(pod, await _json_body(request), request.content_type)
    except patching.PatchError as exc:
        return status(422, "Invalid", str(exc))
    wanted_rv = (updated.get("metadata") or {}).get("resourceVersion")
    if wanted_rv not in (None, pod["metadata"]["resourceVersion"]):
        return statuses.conflict("pods", name)
    updated["status"] = pod["status"]  # the status is a subresource: a patch of the pod does not change it
    errors = validation.pod_update(pod, updated)
    if errors:
        return statuses.invalid("pods", name, errors)
    pod.clear()
    pod.update(updated)  # in place: the kubelet may hold this object
    return web.json_response(copy.deepcopy(request.app[STORE].update("pods", pod)))


async def delete_pod(request: web.Request) -> web.Response:
    pod = _get(request)
    if pod is None:
        return _not_found(request)
    grace = request.query.get("gracePeriodSeconds")
    with contextlib.suppress(Exception):
        body = await request.json() if request.can_read_body else {}
        grace = (
            str(body.get("gracePeriodSeconds", grace))
            if body and body.get("gracePeriodSeconds") is not None
            else grace
        )
    seconds = (
        float(grace)
        if grace not in (None, "None")
        else float(pod["spec"].get("terminationGracePeriodSeconds", 30))
    )
    pod["metadata"]["deletionTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pod["metadata"]["deletionGracePeriodSeconds"] = int(seconds)
    snapshot = copy.deepcopy(request.app[STORE].update("pods", pod))
    uid = pod["metadata"]["uid"]
    task = asyncio.create_task(
        request.app[KUBELET].delete(pod["metadata"]["namespace"], pod["metadata"]["name"], uid, seconds)
    )
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return web.json_response(snapshot)


def _log_since(q: Any) -> str | None:
    """The lower time bound of a log request (sinceSeconds or sinceTime), as a sortable string."""
    if q.get("sinceSeconds"):
        return (datetime.now(UTC) - timedelta(seconds=int(q["sinceSeconds"]))).strftime(
            "%Y-%m-%dT%H:%M:%S.%f"
        )
    if q.get("sinceTime"):
        return str(q["sinceTime"]).rstrip("Z")
    return None


def _waiting_to_start(pod: dict[str, Any]) -> web.Response:
    container = (pod["spec"]["containers"][0]).get("name", "base")
    return status(
        400,
        "BadRequest",
        f'container "{container}" in pod "{pod["metadata"]["name"]}" is waiting to start: ContainerCreating',
    )


async def _follow(request: web.Request, resp: web.StreamResponse, logs: Any, sent: int, render: Any) -> None:
    """Stream lines appended after ``sent`` until the container ends or the pod is gone."""
    while True:
        async with logs.cond:
            if sent >= len(logs.lines) and logs.closed:
                return
            if sent >= len(logs.lines):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(logs.cond.wait(), timeout=1)
            new, sent = logs.lines[sent:], len(logs.lines)
        for item in new:
            await resp.write(render(item))
        if _get(request) is None:
            return


async def pod_log(request: web.Request) -> web.StreamResponse:
    pod = _get(request)
    if pod is None:
        return _not_found(request)
    logs = request.app[KUBELET].logs.get(pod["metadata"]["uid"])
    q = request.query
    if logs is None:
        if pod["status"].get("phase") == "Pending":
            return _waiting_to_start(pod)
        return web.Response(text="", content_type="text/plain")
    follow = q.get("follow", "").lower() in ("1", "true")
    timestamps = q.get("timestamps", "").lower() in ("1", "true")
    since = _log_since(q)

    def render(item: tuple[str, str]) -> bytes:
        return ((item[0] + " " if timestamps else "") + item[1] + "\n").encode()

    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await resp.prepare(request)
    lines = [x for x in logs.lines if since is None or x[0][:26] >= since[:26]]
    if q.get("tailLines"):
        lines = lines[-int(q["tailLines"]) :]
    try:
        for item in lines:
            await resp.write(render(item))
        if follow:
            await _follow(request, resp, logs, len(logs.lines), render)
    except (ConnectionResetError, asyncio.CancelledError):
        return resp
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


async def list_events(request: web.Request) -> web.StreamResponse:
    return await _list_or_watch(request, "events", "EventList")


async def version(_: web.Request) -> web.Response:
    return web.json_response(
        {"major": "1", "minor": "30", "gitVersion": "v1.30.0-local-double", "platform": "linux/amd64"}
    )


async def api_versions(_: web.Request) -> web.Response:
    return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})


async def api_groups(_: web.Request) -> web.Response:
    return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})


async def not_found(request: web.Request) -> web.Response:
    return status(404, "NotFound", f"the server could not find the requested resource ({request.path})")


# -- admin ----------------------------------------------------------------------------------------------
async def admin_state(request: web.Request) -> web.Response:
    store, kubelet = request.app[STORE], request.app[KUBELET]
    pods = [
        {
            "namespace": ns,
            "name": name,
            "phase": p["status"].get("phase"),
            "uid": p["metadata"]["uid"],
            "labels": p["metadata"].get("labels") or {},
        }
        for (ns, name), p in sorted(store.objects["pods"].items())
    ]
    return web.json_response(
        {
            "pods": pods,
            "running": kubelet.running(),
            "kubelet_mode": kubelet.config.mode,
            "instance": kubelet.config.instance,
            "kubelet_restarts": kubelet.restarts,
        }
    )


async def admin_usage(request: web.Request) -> web.Response:
    """What the kubelet sampled of each pod's usage (peak memory, CPU time), newest last."""
    return web.json_response([u.as_dict() for u in request.app[KUBELET].usage.values()])


async def admin_audit(request: web.Request) -> web.Response:
    return web.json_response(request.app[AUDIT])


async def admin_faults(request: web.Request) -> web.Response:
    faults = request.app[FAULTS]
    if request.method == "POST":
        try:
            faults.replace(list(await request.json()))
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
    elif request.method == "DELETE":
        faults.replace([])
    return web.json_response(faults.rules)


async def admin_restart(request: web.Request) -> web.Response:
    await request.app[KUBELET].restart()
    return web.json_response({"restarted": True})


async def admin_reset(request: web.Request) -> web.Response:
    store, kubelet = request.app[STORE], request.app[KUBELET]
    for (ns, name), pod in list(store.objects["pods"].items()):
        await kubelet.delete(ns, name, pod["metadata"]["uid"], grace=1)
    store.objects["events"].clear()
    request.app[FAULTS].replace([])
    return web.json_response({"reset": True})


def make_app(store: Store, kubelet: Kubelet, faults: Faults) -> web.Application:
    """The aiohttp application."""
    app = web.Application(
        middlewares=[tally.tally_middleware, fault_middleware, namespace_middleware],
        client_max_size=16 * 2**20,
    )
    app[STORE], app[KUBELET], app[FAULTS], app[AUDIT] = store, kubelet, faults, []
    tally.install(app)
    pods = "/api/v1/namespaces/{ns}/pods"
    app.add_routes(
        [
            web.get("/version", version),
            web.get("/api", api_versions),
            web.get("/apis", api_groups),
            web.get("/api/v1/pods", list_pods),
            web.get(pods, list_pods),
            web.post(pods, create_pod),
            web.get(pods + "/{name}", read_pod),
            web.patch(pods + "/{name}", patch_pod),
            web.delete(pods + "/{name}", delete_pod),
            web.get(pods + "/{name}/log", pod_log),
            web.get("/api/v1/namespaces/{ns}/events", list_events),
            web.get("/api/v1/events", list_events),
            *namespaces.routes(store),
            web.get("/_double/state", admin_state),
            web.get("/_double/audit", admin_audit),
            web.get("/_double/usage", admin_usage),
            web.get("/_double/faults", admin_faults),
            web.post("/_double/faults", admin_faults),
            web.delete("/_double/faults", admin_faults),
            web.post("/_double/kubelet/restart", admin_restart),
            web.post("/_double/reset", admin_reset),
            *tally.routes(),
        ]
    )
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
