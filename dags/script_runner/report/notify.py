"""Failure notifications through a configurable Airflow notifier, plus the scripts' own `notify` events.

``notifier`` in the settings is the dotted path of any Airflow ``BaseNotifier`` subclass (SMTP, Slack, …)
and ``notifier_kwargs`` its arguments; the message goes in as ``message`` (or the notifier's ``text`` /
``subject`` argument). Without one, notifications are log lines.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
from typing import TYPE_CHECKING, Any

from script_runner.report.build import CLEAN_STATUSES

if TYPE_CHECKING:
    from google.cloud.storage import Client

    from script_runner.config.settings import RunnerSettings

log = logging.getLogger(__name__)
_MESSAGE_ARGS = ("message", "text", "subject", "html_content")


def failure_message(report: dict[str, Any]) -> str:
    """One short paragraph: what failed and where the report is."""
    bad = [r for r in report["scripts"] if r["status"] not in CLEAN_STATUSES]
    lines = [
        f"{report['dag_id']} run {report['run_id']}: "
        + ", ".join(f"{k}={v}" for k, v in report["summary"].items())
    ]
    lines += [f"- {r['path']}: {r['status']} exit={r['exit_code']} {r['reason']}".rstrip() for r in bad[:20]]
    lines += [f"- {r['path']}: rejected: {r['reason']} (fix: {r['fix']})" for r in report["rejected"][:20]]
    return "\n".join(lines)


_ALERT_LEVELS = frozenset({"error", "critical", "alert"})


def alert_events(events: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Lines for the scripts' own ``notify error …`` events (they are sent even when the run succeeds)."""
    return [
        f"- {path}: notify {e.get('level')}: {e.get('message', '')}".rstrip()
        for path, evs in sorted(events.items())
        for e in evs
        if str(e.get("level", "")).lower() in _ALERT_LEVELS
    ]


def send(settings: RunnerSettings, context: Any, message: str) -> bool:
    """Send a notification; never raises (a broken notifier must not hide the run's own result)."""
    log.warning("[runner] notification %s", message.replace("\n", " | "))
    if not settings.notifier:
        return False
    try:
        module_name, _, class_name = settings.notifier.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        params = inspect.signature(cls).parameters
        kwargs = dict(settings.notifier_kwargs)
        for name in _MESSAGE_ARGS:
            if name in params and name not in kwargs:
                kwargs[name] = message
        notifier = cls(**kwargs)
        notifier.notify(context) if hasattr(notifier, "notify") else notifier(context)
        return True
    except Exception:
        log.exception("notifier %s failed", settings.notifier)
        return False


def read_events(client: Client, *, bucket: str, root: str, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Events written by the scripts' ``notify`` calls in this run, by script path."""
    prefix = f"{root}/events/{run_id}/"
    out: dict[str, list[dict[str, Any]]] = {}
    for blob in client.list_blobs(bucket, prefix=prefix):
        path = blob.name[len(prefix) :].rsplit("/", 1)[0]
        try:
            out.setdefault(path, []).append(json.loads(blob.download_as_bytes()))
        except (ValueError, OSError):
            log.warning("unreadable event %s", blob.name)
    return out
