"""Resolving how long and how often an attempt runs and what its end means: ``timeout=``,
``start_timeout=``, ``retry_delay=``, ``retries=``, ``retry_on=``/``fail_on=``/``skip_on=``, ``oom_retry=``
and the local stack's ``fault=`` (an injected attempt failure).
"""

from __future__ import annotations

from script_runner.config.units import parse_duration
from script_runner.discover.resolve_core import ResolverCore

LOCAL_FAULTS = {"oom", "evict", "preempt", "node_shutdown", "unschedulable", "image_pull"}


class AttemptChecks(ResolverCore):
    """Durations and retries (capped), exit code lists, booleans, and the local fault injection."""

    def duration(self, key: str, default: str, cap: str | None) -> int:
        text = self.value(key, default)
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise self.fail(key, str(exc), f"write {key}=30m (forms: 90s, 30m, 1h30m, 2d)") from exc
        if seconds <= 0:
            raise self.fail(key, f"{key}={text} must be more than 0", f"write e.g. {key}=30m")
        if cap is not None and seconds > parse_duration(cap):
            raise self.fail(key, f"{key}={text} is above the cap {cap}", f"use at most {key}={cap}")
        return seconds

    def retries(self) -> int:
        text = self.value("retries", str(self.s.retries))
        if not text.isdigit():
            raise self.fail("retries", f"retries={text!r} is not a whole number", "write retries=2")
        if int(text) > self.s.max_retries:
            raise self.fail(
                "retries",
                f"retries={text} is above the cap {self.s.max_retries}",
                f"use at most retries={self.s.max_retries}",
            )
        return int(text)

    def codes(self, key: str) -> list[int]:
        text = self.raw.values.get(key, "")
        codes = [p.strip() for p in text.split(",") if p.strip()]
        if not all(p.isdigit() and 0 < int(p) < 256 for p in codes):
            raise self.fail(key, f"{key}={text!r} is not a list of exit codes 1-255", f"write {key}=2,3")
        return [int(p) for p in codes]

    def boolean(self, key: str) -> bool:
        text = self.raw.values.get(key, "false").lower()
        if text not in ("true", "false", "yes", "no", "1", "0"):
            raise self.fail(key, f"{key}={text!r} is not true or false", f"write {key}=true")
        return text in ("true", "yes", "1")

    def fault(self) -> str | None:
        fault = self.raw.values.get("fault")
        if fault is None:
            return None
        if not self.s.local_faults:
            raise self.fail(
                "fault",
                "fault= is only honoured on the local stack",
                "remove the fault directive (it is for local testing)",
            )
        kind = fault.split(",", 1)[0]
        if kind not in LOCAL_FAULTS:
            raise self.fail(
                "fault", f"fault {kind!r} is unknown", f"use one of {', '.join(sorted(LOCAL_FAULTS))}"
            )
        return fault
