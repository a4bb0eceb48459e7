"""Fault injection: rules (from a file or the admin API) and the per-pod annotation the DAG sets locally."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANNOTATION = "script-runner.local/fault"
SCRIPT_ANNOTATION = "script-runner.io/script-path"  # the DAG's annotation with the script's full path
POD_FAULTS = {"oom", "evict", "preempt", "unschedulable", "image_pull", "node_shutdown"}
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
    # How often an annotation fault with times=N has struck, per (run, script, fault text).
    struck: dict[tuple[str, str, str], int] = field(default_factory=dict)

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
        meta = pod["metadata"]
        note = (meta.get("annotations") or {}).get(ANNOTATION)
        if note:
            return self._from_annotation(note, meta)
        name = pod["metadata"]["name"]
        for rule in self.rules:
            if rule["fault"] in POD_FAULTS and fnmatch.fnmatchcase(name, rule.get("match", "*")):
                if not self._spend(rule):
                    continue
                return PodFault(rule["fault"], float(rule.get("after", 1.0)))
        return None

    def _from_annotation(self, note: str, meta: dict[str, Any]) -> PodFault | None:
        """``kind[,after=S][,times=N]``: times=N strikes only the first N pods of that script in a run."""
        kind, *opts = (part.strip() for part in note.split(","))
        options = dict(opt.split("=", 1) for opt in opts if "=" in opt)
        if "times" in options:
            key = (
                str((meta.get("labels") or {}).get("run_id", "")),
                str((meta.get("annotations") or {}).get(SCRIPT_ANNOTATION, meta.get("name", ""))),
                note,
            )
            if self.struck.get(key, 0) >= int(options["times"]):
                return None
            self.struck[key] = self.struck.get(key, 0) + 1
        return PodFault(kind, float(options.get("after", 1.0)))

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
