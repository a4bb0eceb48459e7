"""A pod's resource usage, as the entrypoint's end line states it (for right-sizing).

The entrypoint ends every run with ``event=end … cpu_secs=S [mem_peak=BYTES] usage=cgroup|rusage``: figures
from the container's own cgroup, read inside the pod, so they need neither the metrics API nor the node.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api
    from kubernetes.client import models as k8s

log = logging.getLogger(__name__)
# How many of the pod's last log lines are searched for the end line.
TAIL_LINES = 30
END_MARK = " event=end "  # what makes a log line the entrypoint's end line (a line is padded with spaces)


def parse_end_line(text: str) -> dict[str, Any]:
    """The usage fields of the last end line in ``text`` (empty when there is none or it has none).

    :param text: the end of a pod's log.
    :returns: ``cpu_secs`` (float), ``mem_peak_bytes`` (int, when the cgroup keeps a peak), ``usage``
        (where the figures come from: ``cgroup`` or ``rusage``), ``end_reason`` (the line's ``reason``:
        ``ok``, ``script-failed``, ``skipped-done-marker``, ``auth``...) and ``entry_secs`` (the entrypoint's
        own seconds, pod start excluded).
    """
    for line in reversed(text.splitlines()):
        if END_MARK not in f" {line} ":
            continue
        fields = dict(token.split("=", 1) for token in line.split() if "=" in token)
        out: dict[str, Any] = {}
        try:
            if "cpu_secs" in fields:
                out["cpu_secs"] = round(float(fields["cpu_secs"]), 3)
            if "mem_peak" in fields:
                out["mem_peak_bytes"] = int(fields["mem_peak"])
        except ValueError:
            return {}
        if out and fields.get("usage") in ("cgroup", "rusage"):
            out["usage"] = fields["usage"]
        if out and fields.get("reason"):
            # Why the entrypoint ended (did the script run to its own exit?) and how long it ran
            # (without the pod's start): what right-sizing may learn from.
            out["end_reason"] = fields["reason"]
            if fields.get("secs", "").isdigit():
                out["entry_secs"] = int(fields["secs"])
        return out
    return {}


def read_pod_usage(client: CoreV1Api, pod: k8s.V1Pod, *, container: str = "base") -> dict[str, Any]:
    """Usage from the end line in a finished pod's log (one API call; empty when it cannot be read).

    :param client: the Kubernetes core API client.
    :param pod: the pod (its name and namespace are used).
    :param container: the main container's name.
    """
    try:
        # Unparsed: the client turns a preloaded text body into the repr of its bytes ("b'...'").
        response = client.read_namespaced_pod_log(
            name=pod.metadata.name,
            namespace=pod.metadata.namespace,
            container=container,
            tail_lines=TAIL_LINES,
            _preload_content=False,
            _request_timeout=10,
        )
        text = response.data.decode(errors="replace")
    except Exception:
        log.info("could not read the end line of pod %s", getattr(pod.metadata, "name", "?"))
        return {}
    return parse_end_line(text)
