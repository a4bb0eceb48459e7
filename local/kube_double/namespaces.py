"""core/v1 namespaces: the objects whose labels choose the Pod Security level of the pods inside."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from aiohttp import web

from local.kube_double import field_errors, patching, statuses, validation
from local.kube_double.selectors import label_matcher

if TYPE_CHECKING:
    from local.kube_double.store import Store


def seed(store: Store, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Create (or relabel) a namespace at start-up.

    :param labels: labels to set, e.g. ``pod-security.kubernetes.io/enforce: restricted``.
    """
    current = store.get("namespaces", "", name)
    if current is not None:
        current["metadata"].setdefault("labels", {}).update(labels or {})
        return store.update("namespaces", current)
    return store.create("namespaces", _new(name, labels or {}))


def _new(name: str, labels: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def routes(store: Store) -> list[web.RouteDef]:
    """List, create, read and patch namespaces."""

    async def list_(request: web.Request) -> web.Response:
        items = store.list("namespaces", None, label_matcher(request.query.get("labelSelector")))
        meta = {"resourceVersion": str(store.rv)}
        return web.json_response(
            {"kind": "NamespaceList", "apiVersion": "v1", "metadata": meta, "items": items}
        )

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        meta = (body or {}).get("metadata") or {}
        errors = validation.namespace(body or {})
        if errors:
            return statuses.invalid("namespaces", str(meta.get("name") or ""), errors)
        if store.get("namespaces", "", meta["name"]) is not None:
            return statuses.already_exists("namespaces", meta["name"])
        obj = _new(meta["name"], meta.get("labels") or {})
        obj["metadata"]["annotations"] = meta.get("annotations") or {}
        return web.json_response(copy.deepcopy(store.create("namespaces", obj)), status=201)

    async def read(request: web.Request) -> web.Response:
        obj = store.get("namespaces", "", request.match_info["name"])
        if obj is None:
            return statuses.not_found("namespaces", request.match_info["name"])
        return web.json_response(copy.deepcopy(obj))

    async def patch(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        obj = store.get("namespaces", "", name)
        if obj is None:
            return statuses.not_found("namespaces", name)
        try:
            updated = patching.apply(obj, await request.json(), request.content_type)
        except patching.PatchError as exc:
            return statuses.status(422, "Invalid", str(exc))
        errors = validation.namespace(updated)
        if updated["metadata"].get("name") != name:
            errors.append(
                field_errors.invalid("metadata.name", updated["metadata"].get("name"), "field is immutable")
            )
        if errors:
            return statuses.invalid("namespaces", name, errors)
        obj.clear()
        obj.update(updated)
        return web.json_response(copy.deepcopy(store.update("namespaces", obj)))

    base = "/api/v1/namespaces"
    return [
        web.get(base, list_),
        web.post(base, create),
        web.get(base + "/{name}", read),
        web.patch(base + "/{name}", patch),
    ]
