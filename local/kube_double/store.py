"""Objects (pods, events) with resource versions, and watches that see every change after a version."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from local.kube_double import statuses

if TYPE_CHECKING:
    from local.kube_double.selectors import Matcher

Key = tuple[str, str]  # (namespace, name)
HISTORY = 20_000


def now() -> str:
    """RFC 3339 timestamp as the API writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Watcher:
    """One open watch: kind, namespace (None = all), selectors, and the queue the stream drains."""

    kind: str
    namespace: str | None
    match: Matcher
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = field(default_factory=asyncio.Queue)


class Store:
    """In-memory objects by kind. Every change bumps the global resourceVersion and feeds the watches."""

    def __init__(self, history: int = HISTORY) -> None:
        self.objects: dict[str, dict[Key, dict[str, Any]]] = {"pods": {}, "events": {}, "namespaces": {}}
        self.rv = 0
        self.history: deque[tuple[int, str, str, dict[str, Any]]] = deque(maxlen=history)
        self.watchers: list[Watcher] = []

    def snapshot(self) -> dict[str, Any]:
        """Every object and the resourceVersion, as :meth:`restore` takes them (what etcd keeps)."""
        return {"rv": self.rv, "objects": {kind: list(objs.values()) for kind, objs in self.objects.items()}}

    def restore(self, saved: dict[str, Any]) -> None:
        """Load a :meth:`snapshot`: objects keep their uids and versions; the watch history starts empty.

        :param saved: what :meth:`snapshot` returned (read back from JSON).
        """
        self.rv = max(self.rv, int(saved.get("rv", 0)))
        for kind, objs in (saved.get("objects") or {}).items():
            bucket = self.objects.setdefault(kind, {})
            for obj in objs:
                meta = obj.get("metadata", {})
                bucket[(meta.get("namespace", ""), meta["name"])] = obj

    def _bump(self) -> str:
        self.rv += 1
        return str(self.rv)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects[kind].get((namespace, name))

    def create(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now())
        meta["resourceVersion"] = self._bump()
        self.objects[kind][(meta.get("namespace", ""), meta["name"])] = obj
        self._notify(kind, "ADDED", obj)
        return obj

    def update(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        meta["resourceVersion"] = self._bump()
        self.objects[kind][(meta.get("namespace", ""), meta["name"])] = obj
        self._notify(kind, "MODIFIED", obj)
        return obj

    def remove(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects[kind].pop((namespace, name), None)
        if obj is not None:
            obj["metadata"]["resourceVersion"] = self._bump()
            self._notify(kind, "DELETED", obj)
        return obj

    def list(self, kind: str, namespace: str | None, match: Matcher) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for (ns, _), o in sorted(self.objects[kind].items())
            if (namespace is None or ns == namespace) and match(o)
        ]

    def watch(self, kind: str, namespace: str | None, match: Matcher, since: str | None) -> Watcher:
        """Open a watch. Without a version (or "0") it starts with ADDED for what exists, as the API does.

        A version older than the kept history gets one ERROR event (410 Expired) and the end of the stream,
        as the API server answers a stale watch: the client must list again.
        """
        watcher = Watcher(kind, namespace, match)
        stale = bool(since and since.isdigit() and since != "0" and self.history)
        if stale and self.history[0][0] > int(str(since)) + 1:
            watcher.queue.put_nowait(("ERROR", statuses.expired(str(since), self.rv)))
            watcher.queue.put_nowait(None)
            return watcher
        if since in (None, "", "0"):
            for obj in self.list(kind, namespace, match):
                watcher.queue.put_nowait(("ADDED", obj))
        else:
            start = int(since) if since.isdigit() else 0
            for rv, k, etype, obj in self.history:
                if rv > start and self._wanted(watcher, k, obj):
                    watcher.queue.put_nowait((etype, copy.deepcopy(obj)))
        self.watchers.append(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        if watcher in self.watchers:
            self.watchers.remove(watcher)

    def _wanted(self, watcher: Watcher, kind: str, obj: dict[str, Any]) -> bool:
        ns = obj.get("metadata", {}).get("namespace")
        return watcher.kind == kind and (watcher.namespace in (None, ns)) and watcher.match(obj)

    def _notify(self, kind: str, etype: str, obj: dict[str, Any]) -> None:
        snapshot = copy.deepcopy(obj)
        self.history.append((self.rv, kind, etype, snapshot))
        for watcher in list(self.watchers):
            if self._wanted(watcher, kind, snapshot):
                watcher.queue.put_nowait((etype, snapshot))

    def add_event(
        self,
        pod: dict[str, Any],
        *,
        reason: str,
        message: str,
        type_: str = "Normal",
        component: str = "kubelet",
    ) -> None:
        """A core/v1 Event about a pod."""
        meta = pod["metadata"]
        stamp = now()
        self.create(
            "events",
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{meta['name']}.{uuid.uuid4().hex[:12]}",
                    "namespace": meta["namespace"],
                },
                "involvedObject": {
                    "kind": "Pod",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta.get("uid"),
                    "apiVersion": "v1",
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "count": 1,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "eventTime": None,
                "source": {"component": component, "host": "local-node"},
                "reportingComponent": component,
                "reportingInstance": "local-node",
            },
        )
