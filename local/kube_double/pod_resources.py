"""Reading and writing the resources of a pod's containers, for the admission profiles.

Requests are read the way the API server's defaulting leaves them (a limit without a request requests the
limit); quantities are written back in the short forms kubectl shows (``250m``, ``1``, ``512Mi``, ``2Gi``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from local.kube_double import quantity

GIB = Decimal(1024**3)
MIB = Decimal(1024**2)
RESOURCES = ("cpu", "memory", "ephemeral-storage")


def requests_of(container: dict[str, Any]) -> dict[str, Decimal]:
    """The container's requests as numbers (limits fill in missing requests, as defaulting does)."""
    res = container.get("resources") or {}
    merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
    return {name: quantity.parse(merged[name]) for name in RESOURCES if name in merged}


def limits_of(container: dict[str, Any]) -> dict[str, Decimal]:
    """The container's limits as numbers."""
    limits = (container.get("resources") or {}).get("limits") or {}
    return {name: quantity.parse(limits[name]) for name in RESOURCES if name in limits}


def format_cpu(cores: Decimal) -> str:
    """``1``, ``2`` for whole cores, else millicores (``250m``), rounded up to a whole millicore."""
    if cores == cores.to_integral_value():
        return str(int(cores))
    return f"{int((cores * 1000).to_integral_value(rounding='ROUND_CEILING'))}m"


def format_bytes(amount: Decimal) -> str:
    """The largest binary suffix that states the amount exactly (``2Gi``, ``512Mi``), else bytes."""
    whole = int(amount.to_integral_value(rounding="ROUND_CEILING"))
    for suffix, size in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if whole and whole % size == 0:
            return f"{whole // size}{suffix}"
    return str(whole)


def format_quantity(name: str, value: Decimal) -> str:
    """A quantity of resource ``name`` in its usual form."""
    return format_cpu(value) if name == "cpu" else format_bytes(value)
