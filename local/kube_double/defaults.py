"""What the API server fills in on a new pod: spec defaults, requests from limits, the QoS class."""

from __future__ import annotations

from typing import Any

from local.kube_double import quantity


def default_pod(body: dict[str, Any]) -> None:
    """Fill in the defaults and the initial status, in place."""
    spec = body["spec"]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault(
            "imagePullPolicy", "Always" if _latest(container.get("image", "")) else "IfNotPresent"
        )
        resources = container.setdefault("resources", {})
        limits = resources.get("limits") or {}
        if limits:  # a limit without a request requests the limit
            resources["requests"] = {**limits, **(resources.get("requests") or {})}
    body["status"] = {"phase": "Pending", "qosClass": qos_class(spec), "conditions": []}


def _latest(image: str) -> bool:
    tail = image.rsplit("/", 1)[-1]
    return "@" not in tail and (":" not in tail or tail.endswith(":latest"))


def qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed (cpu and memory limits equal to requests everywhere), BestEffort (none), else Burstable."""
    containers = [*(spec.get("initContainers") or []), *spec["containers"]]
    seen_any, guaranteed = False, True
    for container in containers:
        res = container.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        for name in ("cpu", "memory"):
            seen_any = seen_any or name in requests or name in limits
            if name not in limits or quantity.parse(requests.get(name, limits[name])) != quantity.parse(
                limits[name]
            ):
                guaranteed = False
    if not seen_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
