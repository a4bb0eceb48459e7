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


def _label_ok(labels: dict[str, str], op: str, key: str, values: frozenset[str]) -> bool:
    if op == "in":
        return labels.get(key) in values
    if op == "notin":
        return labels.get(key) not in values
    if op == "!exists":
        return key not in labels
    return key in labels


def _parse_label_req(req: str) -> tuple[str, str, frozenset[str]]:
    """One requirement as (op, key, values); equality is ``in`` with one value."""
    set_match = _SET.match(req)
    if set_match:
        values = frozenset(v.strip() for v in set_match.group(3).split(","))
        return set_match.group(2), set_match.group(1), values
    if "!=" in req:
        key, value = (s.strip() for s in req.split("!=", 1))
        return "notin", key, frozenset({value})
    if "=" in req:
        key, value = (s.strip() for s in req.replace("==", "=").split("=", 1))
        return "in", key, frozenset({value})
    if req.startswith("!"):
        return "!exists", req[1:].strip(), frozenset()
    return "exists", req, frozenset()


def label_matcher(selector: str | None) -> Matcher:
    """Matcher for a labelSelector: =, ==, !=, in, notin, key, !key."""
    reqs = [_parse_label_req(r) for r in _split(selector or "")]

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(_label_ok(labels, op, key, values) for op, key, values in reqs)

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
    reqs: list[tuple[bool, str, str]] = []
    for req in _split(selector or ""):
        negate = "!=" in req
        path, value = (s.strip() for s in req.replace("!=", "=").replace("==", "=").split("=", 1))
        reqs.append((negate, path, value))

    def match(obj: dict[str, Any]) -> bool:
        return all((_field(obj, path) == value) != negate for negate, path, value in reqs)

    return match
