"""Label and field selectors as the Kubernetes API parses them (the subset clients send)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]
_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def label_matcher(selector: str | None) -> Matcher:
    """Matcher for a labelSelector: =, ==, !=, in, notin, key, !key."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for req in _split(selector or ""):
        set_match = _SET.match(req)
        if set_match:
            key, op, values = set_match.group(1), set_match.group(2), {v.strip() for v in set_match.group(3).split(",")}
            if op == "in":
                tests.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                tests.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif "!=" in req:
            key, value = (s.strip() for s in req.split("!=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in req:
            key, value = (s.strip() for s in req.replace("==", "=").split("=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif req.startswith("!"):
            tests.append(lambda labels, k=req[1:].strip(): k not in labels)
        else:
            tests.append(lambda labels, k=req: k in labels)

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(t(labels) for t in tests)

    return match


def _field(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    return "" if cur is None else str(cur)


def field_matcher(selector: str | None) -> Matcher:
    """Matcher for a fieldSelector: path=value, path==value, path!=value."""
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for req in _split(selector or ""):
        if "!=" in req:
            path, value = (s.strip() for s in req.split("!=", 1))
            tests.append(lambda o, p=path, v=value: _field(o, p) != v)
        else:
            path, value = (s.strip() for s in req.replace("==", "=").split("=", 1))
            tests.append(lambda o, p=path, v=value: _field(o, p) == v)
    return lambda obj: all(t(obj) for t in tests)
