"""Whose resource rules the pods meet (Cloud Composer 3, GKE Autopilot) and how asks are bent to them."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from script_runner.config.units import format_bytes, format_cpu, gibibytes

if TYPE_CHECKING:
    from script_runner.config.settings import RunnerSettings

# GKE Autopilot (general-purpose compute class) request rules: minimum 250m cpu / 512Mi memory / 10Mi
# ephemeral storage per pod, memory between 1 and 6.5 GiB per vCPU, cpu in steps of 250m; limits are set
# equal to requests; above 30 vCPU / 110Gi memory / 10Gi ephemeral storage a pod is refused. Composer 3
# asks for "supported values" without listing them: we read them as these (docs/DESIGN.md).
AUTOPILOT_MIN_CPU = Decimal("0.25")
AUTOPILOT_MIN_MEMORY_GIB = Decimal("0.5")
AUTOPILOT_MIN_RATIO = Decimal(1)
AUTOPILOT_MAX_RATIO = Decimal("6.5")
AUTOPILOT_CPU_STEP = Decimal("0.25")
AUTOPILOT_MIN_STORAGE = Decimal(10 * 1024**2)
PLATFORM_MAX = {"cpu": "30", "memory": "110Gi", "ephemeral_storage": "10Gi"}
PLATFORM_NAMES = {"composer3": "Cloud Composer 3", "autopilot": "GKE Autopilot"}


def platform_of(settings: RunnerSettings) -> str:
    """Whose resource rules the pods meet: "composer3", "autopilot" or "" (none).

    :param settings: the runner settings.
    """
    if settings.composer3_rules:
        return "composer3"
    return "autopilot" if settings.autopilot else ""


def autopilot_bend(
    cpu: Decimal, memory: Decimal, *, label: str = "autopilot"
) -> tuple[Decimal, Decimal, list[str]]:
    """Raise cpu/memory to what GKE Autopilot would apply, and say what changed.

    Autopilot rounds cpu up to 250m steps, enforces minimums and keeps memory within 1-6.5 GiB per vCPU by
    raising the smaller side. Doing it here makes the plan show what the pod will really get. Composer 3
    refuses values off these rules instead of bending them, so its preset bends them here first.

    :param label: how the notes name the rules ("autopilot", "composer3").
    """
    notes: list[str] = []
    new_cpu = max(cpu, AUTOPILOT_MIN_CPU)
    steps = (new_cpu / AUTOPILOT_CPU_STEP).to_integral_value(rounding="ROUND_CEILING")
    new_cpu = steps * AUTOPILOT_CPU_STEP
    mem_gib = max(gibibytes(memory), AUTOPILOT_MIN_MEMORY_GIB)
    if mem_gib < new_cpu * AUTOPILOT_MIN_RATIO:
        mem_gib = new_cpu * AUTOPILOT_MIN_RATIO
    if mem_gib > new_cpu * AUTOPILOT_MAX_RATIO:
        new_cpu = (mem_gib / AUTOPILOT_MAX_RATIO / AUTOPILOT_CPU_STEP).to_integral_value(
            rounding="ROUND_CEILING"
        ) * AUTOPILOT_CPU_STEP
    new_memory = mem_gib * Decimal(1024**3)
    if new_cpu != cpu:
        notes.append(f"{label}: cpu {format_cpu(cpu)} -> {format_cpu(new_cpu)}")
    if new_memory != memory:
        notes.append(f"{label}: memory {format_bytes(memory)} -> {format_bytes(new_memory)}")
    return new_cpu, new_memory, notes
