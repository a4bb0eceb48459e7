"""The ``gke-autopilot`` admission profile: GKE Autopilot's resource rules, applied as Autopilot applies them.

Autopilot (general-purpose compute class) mutates a pod on create: containers without requests get the
defaults (500m cpu, 2Gi memory, 1Gi ephemeral storage); a pod below the minimums (250m cpu, 512Mi memory,
10Mi ephemeral storage) or outside the cpu:memory ratio (1 to 6.5 GiB per vCPU) is raised to fit; cpu is
rounded up to 250m steps; limits are set to the requests. What changed is recorded in the pod's
``autopilot.gke.io/resource-adjustment`` annotation (``input``, ``output``, ``modified``). A pod above the
maximums (30 vCPU, 110Gi memory, 10Gi ephemeral storage) is rejected by GKE Warden, not lowered.

The raise lands on the first container (the one that does the work); the totals are per pod. Init
containers are left alone. These are the rules of clusters without burstable pods (the larger minimums),
the conservative reading of the documentation (docs/DESIGN.md, "Admission profiles").
"""

from __future__ import annotations

import copy
import json
from decimal import ROUND_CEILING, Decimal
from typing import Any

from local.kube_double.pod_resources import GIB, MIB, RESOURCES, format_quantity, limits_of, requests_of

ANNOTATION = "autopilot.gke.io/resource-adjustment"
WEBHOOK = "warden-validating.common-webhooks.networking.gke.io"
DEFAULTS = {"cpu": Decimal("0.5"), "memory": 2 * GIB, "ephemeral-storage": 1 * GIB}
MINIMUM = {"cpu": Decimal("0.25"), "memory": 512 * MIB, "ephemeral-storage": 10 * MIB}
MAXIMUM = {"cpu": Decimal(30), "memory": 110 * GIB, "ephemeral-storage": 10 * GIB}
CPU_STEP = Decimal("0.25")
MIN_GIB_PER_CPU = Decimal(1)
MAX_GIB_PER_CPU = Decimal("6.5")
Pod = dict[str, Any]


def _ceil_step(cores: Decimal) -> Decimal:
    return (cores / CPU_STEP).to_integral_value(rounding=ROUND_CEILING) * CPU_STEP


def fit(cpu: Decimal, memory: Decimal) -> tuple[Decimal, Decimal]:
    """The pod's cpu and memory totals raised to Autopilot's minimums, cpu step and ratio.

    :param cpu: total cpu requested (cores).
    :param memory: total memory requested (bytes).
    """
    cpu = _ceil_step(max(cpu, MINIMUM["cpu"]))
    memory = max(memory, MINIMUM["memory"], cpu * MIN_GIB_PER_CPU * GIB)
    if memory > cpu * MAX_GIB_PER_CPU * GIB:
        cpu = _ceil_step(memory / GIB / MAX_GIB_PER_CPU)
    return cpu, memory


def _snapshot(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in containers:
        res = c.get("resources") or {}
        entry: dict[str, Any] = {"name": c.get("name")}
        for kind in ("limits", "requests"):
            if res.get(kind):
                entry[kind] = dict(res[kind])
        out.append(entry)
    return out


def _wanted(containers: list[dict[str, Any]]) -> list[dict[str, Decimal]]:
    """Each container's requests with Autopilot's defaults filled in, then the pod raised to fit."""
    wanted = [{**DEFAULTS, **requests_of(c)} for c in containers]
    total_cpu = sum((w["cpu"] for w in wanted), Decimal(0))
    total_mem = sum((w["memory"] for w in wanted), Decimal(0))
    cpu, memory = fit(total_cpu, total_mem)
    main = wanted[0]
    main["cpu"] += cpu - total_cpu
    main["memory"] += memory - total_mem
    storage = sum((w["ephemeral-storage"] for w in wanted), Decimal(0))
    main["ephemeral-storage"] += max(MINIMUM["ephemeral-storage"] - storage, Decimal(0))
    return wanted


def _too_big(pod: Pod, wanted: list[dict[str, Decimal]]) -> list[str]:
    name = (pod.get("metadata") or {}).get("name", "")
    problems = []
    for resource in RESOURCES:
        total = sum((w[resource] for w in wanted), Decimal(0))
        if total > MAXIMUM[resource]:
            problems.append(
                f"workload '{name}' {resource} requests '{format_quantity(resource, total)}' exceed the "
                f"Autopilot maximum of '{format_quantity(resource, MAXIMUM[resource])}'"
            )
    return problems


def admit(pod: Pod) -> str | None:
    """Mutate ``pod`` in place to Autopilot's rules; the refusal message when it is above the maximums.

    :param pod: the pod being created (already validated).
    """
    containers = (pod.get("spec") or {}).get("containers") or []
    if not containers:
        return None
    wanted = _wanted(containers)
    problems = _too_big(pod, wanted)
    if problems:
        details = json.dumps({"[denied by autogke-pod-limit-constraints]": problems})
        return (
            f'admission webhook "{WEBHOOK}" denied the request: GKE Warden rejected the request because it '
            f"violates one or more constraints.\nViolations details: {details}"
        )
    before = _snapshot(containers)
    modified = False
    for container, want in zip(containers, wanted, strict=True):
        have_req, have_lim = requests_of(container), limits_of(container)
        res = container.setdefault("resources", {})
        requests, limits = dict(res.get("requests") or {}), dict(res.get("limits") or {})
        for resource in RESOURCES:
            if have_req.get(resource) != want[resource]:
                requests[resource] = format_quantity(resource, want[resource])
                modified = True
            if have_lim.get(resource) != want[resource]:
                limits[resource] = requests.get(resource, format_quantity(resource, want[resource]))
                modified = True
        res["requests"], res["limits"] = requests, limits
    if modified:
        record = {
            "input": {"containers": before},
            "output": {"containers": _snapshot(containers)},
            "modified": True,
        }
        annotations = pod.setdefault("metadata", {}).setdefault("annotations", {}) or {}
        annotations[ANNOTATION] = json.dumps(copy.deepcopy(record), sort_keys=True)
        pod["metadata"]["annotations"] = annotations
    return None
