"""The ``composer3`` admission profile: what Cloud Composer 3 refuses in a KubernetesPodOperator pod.

Composer 3's documentation lists the differences from Composer 2: pods always run in
``composer-user-workloads`` whatever namespace is asked (see :mod:`local.kube_double.profiles`); no
extra container except one sidecar named ``airflow-xcom-sidecar``; no custom Kubernetes service accounts;
no Pod affinity; resource requirements (cpu, memory, storage) must use supported values. It does not say
which values are supported, nor the words of the refusal: we read "supported" as GKE Autopilot's
general-purpose rules (:mod:`local.kube_double.admission_autopilot`), checked on the main container and
refused instead of bent, and refuse node selectors too (they pick nodes as affinity does). The refusal is a
403 in the shape of an admission webhook's denial, under our stand-in webhook name (docs/DESIGN.md).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from local.kube_double import admission_autopilot as autopilot
from local.kube_double.pod_resources import GIB, RESOURCES, format_quantity, limits_of, requests_of

WEBHOOK = "user-workloads.composer.googleapis.com"
XCOM_SIDECAR = "airflow-xcom-sidecar"
Pod = dict[str, Any]


def _placement(spec: dict[str, Any]) -> list[str]:
    problems = []
    if spec.get("affinity"):
        problems.append("spec.affinity: Pod affinity is not available in Cloud Composer 3")
    if spec.get("nodeSelector"):
        problems.append("spec.nodeSelector: node selectors are not available in Cloud Composer 3")
    return problems


def _containers(spec: dict[str, Any]) -> list[str]:
    extra = [c.get("name", "") for c in (spec.get("containers") or [])[1:]]
    if not extra or extra == [XCOM_SIDECAR]:
        return []
    return [
        f"spec.containers: only one extra container, named {XCOM_SIDECAR}, can run in Cloud Composer 3 "
        f"(got {', '.join(repr(n) for n in extra)})"
    ]


def _service_account(spec: dict[str, Any]) -> list[str]:
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    if account == "default":
        return []
    return [
        f"spec.serviceAccountName: custom Kubernetes service accounts are not available in Cloud Composer 3 "
        f"(got {account!r}); pods run as the environment's service account"
    ]


def _resources(container: dict[str, Any]) -> list[str]:
    """The main container's requests and limits against the supported values."""
    requested = {**autopilot.DEFAULTS, **requests_of(container)}
    limits = limits_of(container)
    name = container.get("name", "")
    problems = []
    for resource in RESOURCES:
        value, low, high = requested[resource], autopilot.MINIMUM[resource], autopilot.MAXIMUM[resource]
        shown = format_quantity(resource, value)
        if not low <= value <= high:
            problems.append(
                f"container {name!r}: {resource} request {shown} is not a supported value (between "
                f"{format_quantity(resource, low)} and {format_quantity(resource, high)})"
            )
        if resource in limits and limits[resource] != value:
            problems.append(
                f"container {name!r}: {resource} limit {format_quantity(resource, limits[resource])} must "
                f"equal its request {shown}"
            )
    cpu, memory = requested["cpu"], requested["memory"]
    if cpu >= autopilot.MINIMUM["cpu"] and cpu % autopilot.CPU_STEP:
        problems.append(f"container {name!r}: cpu {format_quantity('cpu', cpu)} is not a multiple of 250m")
    per_cpu = memory / GIB / cpu if cpu else Decimal(0)
    if cpu and not autopilot.MIN_GIB_PER_CPU <= per_cpu <= autopilot.MAX_GIB_PER_CPU:
        problems.append(
            f"container {name!r}: memory {format_quantity('memory', memory)} for cpu "
            f"{format_quantity('cpu', cpu)} is {per_cpu:.2f} GiB per vCPU; supported: 1 to 6.5"
        )
    return problems


def violations(pod: Pod) -> list[str]:
    """Every reason Composer 3 refuses ``pod`` (empty when it is admitted).

    :param pod: the pod being created (already validated).
    """
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    problems = _placement(spec) + _containers(spec) + _service_account(spec)
    if containers:
        problems += _resources(containers[0])
    return problems


def denial(problems: list[str]) -> str:
    """The refusal message, as an admission webhook's denial reads."""
    return f'admission webhook "{WEBHOOK}" denied the request: ' + "; ".join(problems)
