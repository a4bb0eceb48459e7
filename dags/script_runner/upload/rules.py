"""Runs on upload: which uploads start a run, and which scripts that run is for.

GCS publishes an ``OBJECT_FINALIZE`` notification per upload to a Pub/Sub topic; the DAG's watcher pulls its
subscription (:mod:`script_runner.upload.trigger`), keeps the uploads the selection rules pick (source
prefix, include/exclude globs, ``.runnerignore``, hidden files) and hands their paths to the run, which
restricts discovery to exactly them (the conf key ``uploaded``: paths, never globs, so an object named
``*.sh`` or ``report[1].sh`` runs itself and nothing else). This module holds the pure parts; nothing here
runs at parse time except :func:`upload_wiring`, which reads the environment only.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from script_runner.config import constants as c
from script_runner.config.units import parse_duration
from script_runner.discover.selection import Selector
from script_runner.exceptions import SettingsError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from script_runner.config.settings import RunnerSettings

# Parse-time environment (shape settings: the DAG's schedule and its watcher depend on them).
SUBSCRIPTION_ENV = c.ENV_PREFIX + "UPLOAD_SUBSCRIPTION"
SETTLE_ENV = c.ENV_PREFIX + "UPLOAD_SETTLE"
ASSET_NAME = "gcs_script_runner_uploads"
# The key of the trigger event's payload and of the run's conf that carries the uploaded scripts (exact
# paths). Events of older releases carried them under "only" (globs): still read, as exact paths.
UPLOADED_KEY = "uploaded"
ONLY_KEY = "only"
FINALIZE = "OBJECT_FINALIZE"
_SUBSCRIPTION = re.compile(r"projects/([a-z][-a-z0-9.:]*[a-z0-9])/subscriptions/([A-Za-z][-\w.~+%]{2,254})")


@dataclass(frozen=True)
class UploadWiring:
    """Where the watcher pulls and how long it lets a burst settle (from the environment, at parse time)."""

    project: str
    subscription: str
    # A batch ends when no new upload arrived for this long (a burst becomes one run) ...
    settle: float
    # ... or when its first upload is this old, whatever keeps arriving.
    max_wait: float = 60.0
    # Seconds between pulls while nothing arrives.
    poll: float = 1.0


def upload_wiring(environ: Mapping[str, str] | None = None) -> UploadWiring | None:
    """The watcher's wiring, or None when runs on upload are not wired (``SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION``
    unset). The subscription is ``projects/P/subscriptions/S``, or ``S`` with the project from
    ``GOOGLE_CLOUD_PROJECT`` (Composer sets it).

    :param environ: the environment (``os.environ`` when None).
    :raises SettingsError: when the subscription or the settle window is malformed.
    """
    env = os.environ if environ is None else environ
    raw = env.get(SUBSCRIPTION_ENV, "").strip()
    if not raw:
        return None
    match = _SUBSCRIPTION.fullmatch(raw)
    if match:
        project, subscription = match.groups()
    elif "/" not in raw and (env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCP_PROJECT")):
        project, subscription = env.get("GOOGLE_CLOUD_PROJECT") or env["GCP_PROJECT"], raw
    else:
        raise SettingsError(
            f"{SUBSCRIPTION_ENV}={raw!r} is not a subscription (fix: projects/PROJECT/subscriptions/NAME, "
            "or NAME with GOOGLE_CLOUD_PROJECT set)"
        )
    raw_settle = env.get(SETTLE_ENV, "5s")
    try:
        settle = float(parse_duration(raw_settle))
    except ValueError as exc:
        raise SettingsError(f"{SETTLE_ENV}={raw_settle!r} is not a duration: {exc} (fix: e.g. 5s)") from exc
    if not 0 <= settle <= 30:
        raise SettingsError(f"{SETTLE_ENV}={raw_settle!r} must be between 0s and 30s")
    return UploadWiring(project=project, subscription=subscription, settle=settle)


@dataclass(frozen=True)
class Upload:
    """One uploaded object, from a GCS notification's attributes."""

    bucket: str
    name: str
    generation: str


def uploads_from_messages(messages: Iterable[Mapping[str, Any]]) -> list[Upload]:
    """The uploads (``OBJECT_FINALIZE`` only) in pulled messages, in the form ``ReceivedMessage.to_dict``
    gives (``{"ack_id": …, "message": {"attributes": {…}, "data": …}}``) or the REST form (camelCase).

    The attributes carry bucket, name and generation whatever the notification's payload format; the JSON
    payload is read only when they are missing.

    :param messages: pulled messages.
    """
    out = []
    for received in messages:
        message = received.get("message") or {}
        attributes = dict(message.get("attributes") or {})
        if attributes.get("eventType", FINALIZE) != FINALIZE:
            continue
        if not attributes.get("objectId"):
            attributes.update(_payload_attributes(message.get("data")))
        if attributes.get("bucketId") and attributes.get("objectId"):
            out.append(
                Upload(
                    bucket=str(attributes["bucketId"]),
                    name=str(attributes["objectId"]),
                    generation=str(attributes.get("objectGeneration", "")),
                )
            )
    return out


def _payload_attributes(data: Any) -> dict[str, str]:
    try:
        raw = data if isinstance(data, bytes) else base64.b64decode(str(data or ""))
        obj = json.loads(raw)
        return {
            "bucketId": obj["bucket"],
            "objectId": obj["name"],
            "objectGeneration": obj.get("generation", ""),
        }
    except Exception:  # not a JSON_API_V1 payload: nothing to add
        return {}


def select_uploads(
    uploads: Iterable[Upload], settings: RunnerSettings, ignore: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The scripts (paths relative to the source) among ``uploads``, and why each other upload is ignored.

    The same rules as discovery: under the source's bucket and prefix, matched by the include globs, not
    hidden, not excluded by the exclude globs or ``.runnerignore``.

    :param uploads: the uploaded objects.
    :param settings: the current runner settings (source, include, exclude).
    :param ignore: the globs of the source's ``.runnerignore``.
    """
    pick = Selector(settings.include, settings.exclude + ignore)
    selected: set[str] = set()
    ignored: dict[str, str] = {}
    for upload in uploads:
        uri = f"gs://{upload.bucket}/{upload.name}"
        if settings.source_scheme != "gs" or upload.bucket != settings.source_bucket:
            ignored[uri] = f"not in the source {settings.source}"
        elif not upload.name.startswith(settings.source_prefix):
            ignored[uri] = f"not under the source {settings.source}"
        else:
            path = upload.name[len(settings.source_prefix) :]
            reason = pick.reason(path)
            if reason is None:
                selected.add(path)
            else:
                ignored[uri] = reason
    return sorted(selected), ignored


def uploaded_paths(payload: Mapping[str, Any]) -> list[str]:
    """The uploaded scripts' paths in a trigger event's payload (``uploaded``, or an older ``only``).

    :param payload: the event's payload.
    """
    raw = payload.get(UPLOADED_KEY, payload.get(ONLY_KEY)) or []
    return [str(p) for p in ([raw] if isinstance(raw, str) else raw) if p]


def uploaded_from_asset_events(events: Any) -> list[str]:
    """The uploaded scripts named by the asset events that triggered a run (Airflow 3), sorted, once each.

    :param events: the context's ``triggering_asset_events`` (asset → events), or None.
    """
    paths: set[str] = set()
    for asset_events in (events or {}).values():
        for event in asset_events:
            paths.update(uploaded_paths((getattr(event, "extra", None) or {}).get("payload") or {}))
    return sorted(paths)


def only_globs(conf: Mapping[str, Any]) -> list[str]:
    """The conf's ``only`` as a list of paths or globs (one string is one glob; empty when not set).

    :param conf: the run's conf.
    """
    raw = conf.get(ONLY_KEY)
    if not raw:
        return []
    return [raw] if isinstance(raw, str) else [str(g) for g in raw if g]


def matches_only(path: str, only: list[str]) -> bool:
    """Whether ``path`` is one of ``only`` (paths or globs relative to the source).

    :param path: a script's path relative to the source.
    :param only: paths or globs.
    """
    return any(fnmatch.fnmatchcase(path, glob) for glob in only)


def current_conf(ctx: Any = None) -> dict[str, Any]:
    """The triggering conf of the current run (empty outside a task).

    A run started by uploads (Airflow 3's asset watcher) has no conf of its own: its ``uploaded`` is the
    uploaded scripts, from the asset events that triggered it.

    :param ctx: the task's context (default: the current one).
    """
    if ctx is None:
        from script_runner.config.compat import get_current_context  # Airflow, only inside a task

        ctx = get_current_context()
    conf = getattr(ctx.get("dag_run"), "conf", None) or {}
    out = dict(conf) if isinstance(conf, dict) else json.loads(str(conf))
    if UPLOADED_KEY not in out and ONLY_KEY not in out:
        uploaded = uploaded_from_asset_events(ctx.get("triggering_asset_events"))
        if uploaded:
            out[UPLOADED_KEY] = uploaded
            out.setdefault("reason", "upload")  # kept in the report, as the Airflow 2.11 watcher sends it
    return out
