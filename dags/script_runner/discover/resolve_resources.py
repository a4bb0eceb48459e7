"""Resolving the resource directives: ``cpu=``, ``memory=`` and ``ephemeral_storage=``.

Each is parsed, held to its cap in the settings, and refused above what the platform supports
(:mod:`script_runner.config.platform_rules`). Bending a value to the platform's rules is
:func:`~script_runner.config.platform_rules.autopilot_bend`'s, applied by
:mod:`script_runner.discover.resolve` after all checks.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from script_runner.config.platform_rules import PLATFORM_MAX, PLATFORM_NAMES, platform_of
from script_runner.config.units import format_bytes, parse_bytes, parse_cpu
from script_runner.discover.resolve_core import ResolverCore

# Kubernetes' decimal suffixes (k, M, G, ...): 10^3, 10^6, 10^9 bytes; the binary ones end with "i".
_DECIMAL = re.compile(r"^(\d+)([kKMGTPE])$")
_POWERS = {"k": 3, "K": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

if TYPE_CHECKING:
    from collections.abc import Callable
    from decimal import Decimal


class ResourceChecks(ResolverCore):
    """cpu, memory and ephemeral storage: parsed, capped, within the platform's maximum."""

    def cpu(self) -> Decimal:
        text = self.value("cpu", self.s.cpu)
        try:
            cpu = parse_cpu(text)
        except ValueError as exc:
            raise self.fail("cpu", str(exc), "write cpu=500m or cpu=2") from exc
        if cpu > parse_cpu(self.s.max_cpu):
            raise self.fail(
                "cpu",
                f"cpu={text} is above the cap {self.s.max_cpu}",
                f"ask for at most cpu={self.s.max_cpu} or raise max_cpu in the settings",
            )
        self.platform_max("cpu", text, cpu, parse_cpu)
        return cpu

    def memory(self) -> Decimal:
        text = self.value("memory", self.s.memory)
        try:
            memory = parse_bytes(text)
        except ValueError as exc:
            raise self.fail("memory", str(exc), "write memory=512Mi or memory=2Gi") from exc
        self.unitless("memory", text)
        if memory > parse_bytes(self.s.max_memory):
            raise self.fail(
                "memory",
                f"memory={text} is above the cap {self.s.max_memory}",
                f"ask for at most memory={self.s.max_memory} or raise max_memory in the settings",
            )
        self.platform_max("memory", text, memory, parse_bytes)
        self.decimal_unit("memory", text)
        return memory

    def storage(self) -> str:
        text = self.value("ephemeral_storage", self.s.ephemeral_storage)
        try:
            amount = parse_bytes(text)
        except ValueError as exc:
            raise self.fail("ephemeral_storage", str(exc), "write ephemeral_storage=2Gi") from exc
        self.unitless("ephemeral_storage", text)
        if amount > parse_bytes(self.s.max_ephemeral_storage):
            raise self.fail(
                "ephemeral_storage",
                f"ephemeral_storage={text} is above the cap {self.s.max_ephemeral_storage}",
                "ask for less or raise max_ephemeral_storage",
            )
        self.platform_max("ephemeral_storage", text, amount, parse_bytes)
        self.decimal_unit("ephemeral_storage", text)
        return format_bytes(amount)

    def unitless(self, key: str, text: str) -> None:
        """Refuse a bare number in the directive: Kubernetes reads ``memory=512`` as 512 bytes, not 512Mi."""
        if key in self.raw.values and text.strip().isdigit():
            number = text.strip()
            raise self.fail(
                key,
                f"{key}={text} has no unit, so it means {number} bytes",
                f"write {key}={number}Mi (or {number}Gi); a unit is required",
            )

    def decimal_unit(self, key: str, text: str) -> None:
        """Warn about a decimal suffix written in the directive (``1G`` is 10^9 bytes, ``1Gi`` is 2^30)."""
        if key not in self.raw.values:
            return
        match = _DECIMAL.match(text.strip())
        if match:
            number, unit = match.groups()
            power, binary = _POWERS[unit], unit.upper() + "i"
            amount = f"10^{power}" if number == "1" else f"{number}x10^{power}"
            self.warn(
                key,
                f"{key}={text} means {amount} bytes ({unit} is a decimal unit), not {number}{binary}",
                f"write {key}={number}{binary}, or {key}={int(number) * 10**power} if you mean {amount}",
            )

    def platform_max(self, key: str, text: str, amount: Decimal, parse: Callable[[str], Decimal]) -> None:
        """Refuse a value above what the platform supports (it refuses such a pod instead of bending it)."""
        platform = platform_of(self.s)
        if platform and amount > parse(PLATFORM_MAX[key]):
            raise self.fail(
                key,
                f"{key}={text} is above what {PLATFORM_NAMES[platform]} supports ({PLATFORM_MAX[key]})",
                f"ask for at most {key}={PLATFORM_MAX[key]}",
            )
