"""A call to the Kubernetes double's HTTP API (its ``/_double/...`` controls or a Kubernetes path), JSON in
and out: what the e2e harness and the soak use to read its state, set faults and read events."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def call(base_url: str, method: str, path: str, body: Any = None, *, timeout: float = 30) -> Any:
    """Send ``body`` (JSON) with ``method`` to ``base_url + path``; the decoded answer (None when empty).

    :param base_url: the double's URL, e.g. ``http://127.0.0.1:6443``.
    :param timeout: seconds; an HTTP error status is raised as ``urllib.error.HTTPError``.
    """
    req = urllib.request.Request(
        f"{base_url}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")
