"""Fault injection: rules (from a file or the admin API) and the per-pod annotation the DAG sets locally."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANNOTATION = "script-runner.local/fault"
POD_FAULTS = {"oom", "evict", "unschedulable", "image_pull"}
API_FAULTS = {"api_error", "api_timeout"}


@dataclass
class PodFault:
    """A fault for one pod and when it strikes (seconds after the container starts)."""

    kind: str
    after: float = 1.0


@dataclass
class Faults:
    """The active rules. Pod rules match pod names; API rules match method and path, for N calls."""

    rules: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | None) -> Faults:
        if not path:
            return cls()
        return cls(rules=list(json.loads(Path(path).read_text())))

    def replace(self, rules: list[dict[str, Any]]) -> None:
        for rule in rules:
            if rule.get("fault") not in POD_FAULTS | API_FAULTS:
                raise ValueError(
                    f"unknown fault {rule.get('fault')!r}; known: {sorted(POD_FAULTS | API_FAULTS)}"
                )
        self.rules = rules

    def for_pod(self, pod: dict[str, Any]) -> PodFault | None:
        """The annotation wins; else the first matching pod rule (its count, if any, is spent)."""
        note = (pod["metadata"].get("annotations") or {}).get(ANNOTATION)
        if note:
            kind, _, rest = note.partition(",")
            after = float(rest.split("=", 1)[1]) if rest.startswith("after=") else 1.0
            return PodFault(kind.strip(), after)
        name = pod["metadata"]["name"]
        for rule in self.rules:
            if rule["fault"] in POD_FAULTS and fnmatch.fnmatchcase(name, rule.get("match", "*")):
                if not self._spend(rule):
                    continue
                return PodFault(rule["fault"], float(rule.get("after", 1.0)))
        return None

    def for_request(self, method: str, path: str) -> dict[str, Any] | None:
        """An API fault for this request, if a rule with calls left matches."""
        if path.startswith("/_double"):
            return None
        for rule in self.rules:
            if rule["fault"] not in API_FAULTS:
                continue
            if rule.get("method", "*") not in ("*", method) or not fnmatch.fnmatchcase(
                path, rule.get("path", "*")
            ):
                continue
            if self._spend(rule):
                return rule
        return None

    @staticmethod
    def _spend(rule: dict[str, Any]) -> bool:
        if "count" not in rule:
            return True
        if int(rule["count"]) <= 0:
            return False
        rule["count"] = int(rule["count"]) - 1
        return True
