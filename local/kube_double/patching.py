"""PATCH bodies applied to a copy of an object: JSON patch, merge patch (RFC 7386), strategic merge."""

from __future__ import annotations

import copy
from typing import Any

# Strategic merge patch merges these lists item by item on their "name" (the rest are replaced whole).
_MERGE_BY_NAME = {"containers", "initContainers", "volumes", "env", "volumeMounts", "ports"}


class PatchError(ValueError):
    """A patch that cannot be applied (a missing path, a failed test, an unknown op)."""


def apply(obj: dict[str, Any], body: Any, content_type: str) -> dict[str, Any]:
    """The object after the patch; ``obj`` is not changed.

    :param content_type: the request's Content-Type (json-patch, merge-patch or strategic-merge-patch).
    :raises PatchError: when the patch does not apply.
    """
    if "json-patch" in content_type or isinstance(body, list):
        if not isinstance(body, list):
            raise PatchError("a JSON patch must be a list of operations")
        return _json_patch(copy.deepcopy(obj), body)
    if not isinstance(body, dict):
        raise PatchError("a merge patch must be a JSON object")
    merged: dict[str, Any] = _merge(copy.deepcopy(obj), body, strategic="strategic" in content_type)
    return merged


def _merge(target: Any, patch: Any, *, strategic: bool, key: str = "") -> Any:
    if isinstance(patch, list) and isinstance(target, list) and strategic and key in _MERGE_BY_NAME:
        by_name = {item.get("name"): item for item in target if isinstance(item, dict)}
        for item in patch:
            if isinstance(item, dict) and item.get("name") in by_name:
                merged = _merge(by_name[item["name"]], item, strategic=strategic)
                target[target.index(by_name[item["name"]])] = merged
            else:
                target.append(item)
        return target
    if not isinstance(patch, dict):
        return patch
    out = target if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v, strategic=strategic, key=k)
    return out


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _walk(doc: Any, path: str) -> tuple[Any, str]:
    """The container holding the last token of ``path``, and that token."""
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    tokens = [_unescape(t) for t in path[1:].split("/")]
    node = doc
    for token in tokens[:-1]:
        try:
            node = node[int(token)] if isinstance(node, list) else node[token]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise PatchError(f'doc is missing path: "{path}": missing value') from exc
    return node, tokens[-1]


def _json_patch(doc: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    for op in ops:
        if not isinstance(op, dict) or "path" not in op:
            raise PatchError("every JSON patch operation needs an op and a path")
        parent, last = _walk(doc, str(op["path"]))
        kind = op.get("op")
        try:
            if kind in ("add", "replace"):
                if isinstance(parent, list):
                    index = len(parent) if last == "-" else int(last)
                    parent.insert(index, op["value"]) if kind == "add" else parent.__setitem__(
                        index, op["value"]
                    )
                elif kind == "replace" and last not in parent:
                    raise PatchError(f"replace operation does not apply: doc is missing key: {op['path']}")
                else:
                    parent[last] = op["value"]
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind == "test":
                current = parent[int(last)] if isinstance(parent, list) else parent[last]
                if current != op.get("value"):
                    raise PatchError(f"testing value {op['path']} failed: test failed")
            else:
                raise PatchError(f"unsupported JSON patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            if isinstance(exc, PatchError):
                raise
            raise PatchError(f'doc is missing path: "{op["path"]}": missing value') from exc
    return doc
