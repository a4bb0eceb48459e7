"""Keep env values out of the provider's own log lines about a pod.

KPO's ``PodManager.create_pod`` logs the whole pod request as JSON: at debug level always, and at error
level with "Exception when attempting to create Namespaced Pod:" when the API server refuses the pod (an
admission rule on a resource value, a bad label), every ``env=`` and ``extra_env`` value included. The pod
manager's logger is wrapped so that a pod (a ``V1Pod``, its dict, or its JSON text) passed to any of its log
calls is logged with env values replaced. The same on every provider we support (10.11 to 10.25): the call
sites change, the logger attribute (``LoggingMixin._log``) does not.
"""

from __future__ import annotations

import json
from typing import Any

REDACTED = "***"
_LEVELS = ("debug", "info", "warning", "warn", "error", "exception", "critical", "fatal")


def redact_pod_logs(manager: Any) -> Any:
    """Wrap ``manager``'s logger so pods in its log calls lose their env values; returns ``manager``.

    :param manager: a provider ``PodManager`` (any ``LoggingMixin``).
    """
    current = manager.log
    if not isinstance(current, _RedactingLog):
        manager._log = _RedactingLog(current)
    return manager


def redact_pod(value: Any) -> Any:
    """``value`` with the env values of a pod in it replaced (anything else is returned as it is).

    :param value: a log argument: a ``V1Pod``, a pod as a dict, the pod's JSON text, or anything else.
    """
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, dict):
        return _redact_dict(value)
    if type(value).__name__ == "V1Pod":
        from kubernetes.client import ApiClient

        return json.dumps(_redact_dict(ApiClient().sanitize_for_serialization(value)))
    return value


def _redact_text(text: str) -> str:
    if '"env"' not in text and "'env'" not in text:
        return text
    try:
        loaded = json.loads(text)
    except ValueError:
        # Not JSON (a repr, or cut short): withhold it rather than guess where the values are.
        return "<pod body withheld: it holds env values>"
    return json.dumps(_redact_dict(loaded)) if isinstance(loaded, dict) else text


def _redact_dict(pod: dict[str, Any]) -> dict[str, Any]:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return pod
    out_spec = dict(spec)
    for key in ("containers", "initContainers", "init_containers", "ephemeralContainers"):
        containers = spec.get(key)
        if isinstance(containers, list):
            out_spec[key] = [_redact_container(c) for c in containers]
    return {**pod, "spec": out_spec}


def _redact_container(container: Any) -> Any:
    if not isinstance(container, dict) or not isinstance(container.get("env"), list):
        return container
    env = [
        {**e, "value": REDACTED} if isinstance(e, dict) and e.get("value") not in (None, "") else e
        for e in container["env"]
    ]
    return {**container, "env": env}


class _RedactingLog:
    """A logger whose level methods redact pods in their message arguments; everything else passes through."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in _LEVELS:
            return attr

        def call(msg: Any, *args: Any, **kwargs: Any) -> Any:
            return attr(redact_pod(msg), *(redact_pod(a) for a in args), **kwargs)

        return call
