"""Where the runner settings come from: a preset, then the Variable, then the environment.

Order (later wins): preset defaults → Variable ``script_runner_settings`` (a JSON object) → environment
variables ``SCRIPT_RUNNER_<FIELD>``. Settings are read at run time only (the discover task), never at parse
time; :func:`parse_time_settings` reads the few that shape the DAG from the environment alone. The preset
is ``SCRIPT_RUNNER_PRESET``, else the Variable's ``preset``, else ``SCRIPT_RUNNER_DEFAULT_PRESET``, else
composer3.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from script_runner.config import constants as c
from script_runner.config.presets import PRESETS
from script_runner.config.units import parse_duration
from script_runner.exceptions import SettingsError

if TYPE_CHECKING:
    # The settings model is imported where settings are loaded, never at parse time: building its pydantic
    # models is most of what the DAG file's parse would add to a bare KubernetesPodOperator DAG's.
    from script_runner.config.settings import RunnerSettings

# The preset when neither SCRIPT_RUNNER_PRESET nor the Variable names one (the local stack sets "local" here,
# so a test can still pick another preset in the Variable).
DEFAULT_PRESET_ENV = c.ENV_PREFIX + "DEFAULT_PRESET"

# Composer mounts its environment bucket gs://$GCS_BUCKET/ here (gcsfuse) on the Airflow workers only: a
# file:// source under it is read through the GCS API instead (pods cannot see the mount).
COMPOSER_GCS_MOUNT = "/home/airflow/gcs/"

_LIST_FIELDS = {"include", "exclude", "image_allowlist", "service_account_allowlist"}
_DICT_FIELDS = {"extra_env", "pod_labels", "notifier_kwargs", "secrets", "identity_bindings"}


def load_settings(
    *,
    variable: str | Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    local_folder: bool = False,
) -> RunnerSettings:
    """Resolve the settings: preset, then the Variable's JSON, then ``SCRIPT_RUNNER_*`` env.

    :param variable: the Variable's value (JSON text or a mapping); None when unset.
    :param environ: the environment (default ``os.environ``).
    :param local_folder: accept a ``file://`` folder outside Composer's bucket mount (the CLI planning a
        local checkout: nothing runs from it). A run refuses one: see :func:`pod_readable_source`.
    :raises SettingsError: naming the field, the value and the fix.
    """
    env = os.environ if environ is None else environ
    from_var = _variable_dict(variable)
    from_env = _env_overrides(env)
    preset = str(
        from_env.get("preset") or from_var.get("preset") or env.get(DEFAULT_PRESET_ENV) or "composer3"
    )
    if preset not in PRESETS:
        raise SettingsError(f"preset {preset!r} is unknown; use one of {', '.join(PRESETS)}")
    merged: dict[str, Any] = {**PRESETS[preset], **from_var, **from_env, "preset": preset}
    if not merged.get("source"):
        bucket = env.get("GCS_BUCKET", "")
        if not bucket:
            raise SettingsError(
                "no script source: GCS_BUCKET is not set (Composer sets it); set "
                "SCRIPT_RUNNER_SOURCE=gs://<bucket>/data/ or source in the Variable"
            )
        merged["source"] = f"gs://{bucket}/data/"
    merged["source"] = pod_readable_source(str(merged["source"]), env, local_folder=local_folder)
    from pydantic import ValidationError

    from script_runner.config.settings import RunnerSettings, describe_validation_error

    try:
        return RunnerSettings.model_validate(merged)
    except ValidationError as exc:
        # Not chained: pydantic's own text repeats every input, secret-bearing ones included.
        raise SettingsError(describe_validation_error(exc)) from None


def pod_readable_source(source: str, environ: Mapping[str, str], *, local_folder: bool = False) -> str:
    """The source as the pods can read it: every script is fetched inside its pod through the GCS API.

    A ``file://`` folder is on the Airflow worker; a pod cannot see it (Composer mounts the environment
    bucket with gcsfuse on its workers, not in user-workload pods). Under Composer's mount
    (``file:///home/airflow/gcs/X``) it is the environment bucket itself, so it becomes
    ``gs://$GCS_BUCKET/X``: discovery lists it and pods fetch the pinned generation through the GCS API.
    Any other folder is refused, unless ``local_folder`` (planning only).

    :param source: the configured source.
    :param environ: the environment (``GCS_BUCKET``).
    :param local_folder: keep another ``file://`` folder as it is.
    :raises SettingsError: for a folder pods cannot read, naming the reason and the fix.
    """
    if not source.startswith("file://"):
        return source
    path = source[len("file://") :]
    mount = COMPOSER_GCS_MOUNT
    if path.rstrip("/") + "/" == mount or path.startswith(mount):
        bucket = environ.get("GCS_BUCKET", "")
        rest = path[len(mount) :] if path.startswith(mount) else ""
        if not bucket:
            raise SettingsError(
                f"setting source={source!r}: {mount} is Composer's mount of the environment bucket "
                "gs://$GCS_BUCKET/, but GCS_BUCKET is not set (fix: set source to gs://<bucket>/"
                f"{rest or 'data/'})"
            )
        return f"gs://{bucket}/{rest}"
    if local_folder:
        return source
    raise SettingsError(
        f"setting source={source!r}: a folder on the Airflow worker cannot be a source, because the pods "
        "that run the scripts cannot see the worker's files (on Composer only the workers mount the "
        f"bucket, under {mount}) (fix: upload the scripts to a bucket and set source to "
        "gs://<bucket>/<prefix>/, or use file:///home/airflow/gcs/<prefix>/ for the environment bucket)"
    )


def load_settings_from_airflow() -> RunnerSettings:
    """Settings at run time inside a task: reads the Variable (if any) and the environment."""
    from script_runner.config.compat import variable_get

    raw = variable_get(c.SETTINGS_VARIABLE)
    return load_settings(variable=raw)


def parse_time_settings(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """The few settings that shape the DAG itself, from the environment only (no I/O at parse time).

    ``SCRIPT_RUNNER_SHARDS``: mapped run tasks, each maps up to Airflow's max_map_length scripts; 0 when
    unset: the DAG then has one, or as many as ``SCRIPT_RUNNER_MAX_SCRIPTS`` needs when that is set
    here (:func:`script_runner.discover.shards.default_shards`; 0 when unset).
    ``SCRIPT_RUNNER_MAX_RETRIES``: the Airflow retries ceiling; each script's own ``retries`` is enforced
    by the operator under it. ``SCRIPT_RUNNER_RETRY_DELAY``: first retry delay (doubles each retry).
    """
    env = os.environ if environ is None else environ
    out = {}
    for key, default, low, high in (
        ("SHARDS", "0", 0, 64),
        ("MAX_SCRIPTS", "0", 0, 1_000_000),
        ("MAX_RETRIES", "5", 0, 20),
        ("RETRY_DELAY", "10", 0, 86400),
    ):
        raw = env.get(c.ENV_PREFIX + key, default)
        try:
            value = parse_duration(raw) if key == "RETRY_DELAY" else int(raw)
        except ValueError as exc:
            raise SettingsError(f"{c.ENV_PREFIX}{key}={raw!r} is not valid: {exc}") from exc
        if not low <= value <= high:
            raise SettingsError(f"{c.ENV_PREFIX}{key}={value} must be between {low} and {high}")
        out[key.lower()] = value
    return out


def _variable_dict(variable: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if variable is None or variable == "":
        return {}
    if isinstance(variable, Mapping):
        return dict(variable)
    try:
        loaded = json.loads(variable)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"Variable {c.SETTINGS_VARIABLE} is not valid JSON ({exc}); set it to a JSON object"
        ) from exc
    if not isinstance(loaded, dict):
        raise SettingsError(
            f"Variable {c.SETTINGS_VARIABLE} must be a JSON object, not {type(loaded).__name__}"
        )
    return loaded


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    from script_runner.config.settings import RunnerSettings

    fields = RunnerSettings.model_fields
    out: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(c.ENV_PREFIX):
            continue
        name = key[len(c.ENV_PREFIX) :].lower()
        if name not in fields:
            continue
        if name == "service_account_allowlist" and raw.lstrip().startswith("{"):
            out[name] = _env_dict(key, raw)
        elif name in _LIST_FIELDS:
            out[name] = _env_list(key, raw)
        elif name in _DICT_FIELDS:
            out[name] = _env_dict(key, raw)
        else:
            out[name] = None if raw == "" and name in ("config_file", "kubernetes_conn_id") else raw
    return out


def _env_dict(key: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        from script_runner.config.settings import SECRET_BEARING

        shown = "(value withheld: it may hold secrets)" if _field(key) in SECRET_BEARING else repr(raw)
        raise SettingsError(
            f"{key}={shown} is not valid JSON ({exc.msg} at character {exc.pos}) "
            f'(fix: set it to a JSON object like {{"K": "V"}})'
        ) from None


def _field(key: str) -> str:
    return key[len(c.ENV_PREFIX) :].lower()


def _env_list(key: str, raw: str) -> list[str]:
    """A list setting from the environment: a JSON list (``["a", "b"]``) or comma-separated text."""
    if not raw.lstrip().startswith("["):
        return [p.strip() for p in raw.split(",") if p.strip()]
    try:
        loaded = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{key}={raw!r} is not a valid JSON list ({exc.msg} at character {exc.pos}) "
            f'(fix: quote every item, e.g. {key}=\'["a", "b"]\', or write it comma-separated: '
            f"{key}=a,b)"
        ) from exc
    if not isinstance(loaded, list) or not all(isinstance(item, str) for item in loaded):
        raise SettingsError(
            f'{key}={raw!r} must be a JSON list of strings (fix: {key}=\'["a", "b"]\' or {key}=a,b)'
        )
    return loaded


def fallback_settings(environ: Mapping[str, str] | None = None) -> RunnerSettings:
    """Settings for writing a report when the real ones are invalid: the preset plus every
    ``SCRIPT_RUNNER_*`` variable that is valid on its own (an invalid one is left out), no Variable.

    :param environ: the environment (default ``os.environ``).
    :raises SettingsError: only when even the preset alone cannot be loaded (e.g. no ``GCS_BUCKET``).
    """
    env = dict(os.environ if environ is None else environ)
    try:
        return load_settings(variable=None, environ=env)
    except SettingsError:
        pass
    base = {
        k: v
        for k, v in env.items()
        if not k.startswith(c.ENV_PREFIX) or k in (c.PRESET_ENV, DEFAULT_PRESET_ENV)
    }
    try:
        load_settings(variable=None, environ=base)
    except SettingsError:
        base.pop(c.PRESET_ENV, None)
    for key in sorted(k for k in env if k.startswith(c.ENV_PREFIX) and k not in base):
        try:
            load_settings(variable=None, environ={**base, key: env[key]})
        except SettingsError:
            continue
        base[key] = env[key]
    return load_settings(variable=None, environ=base)
