"""How a script's directives become its :class:`~script_runner.discover.spec.ScriptSpec`: defaults, caps,
allowlists and the platform's resource rules applied, every problem named with its line and fix.

The checks are mixins by directive family, beside this module: resources (``resolve_resources``), identity
and access (``resolve_identity``), an attempt's time, retries and codes (``resolve_attempts``), order
(``resolve_order``), over a small core that runs one check and raises or collects its problem
(``resolve_core``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from script_runner.config.platform_rules import AUTOPILOT_MIN_STORAGE, autopilot_bend, platform_of
from script_runner.config.units import format_bytes, format_cpu, parse_bytes
from script_runner.discover.resolve_attempts import AttemptChecks
from script_runner.discover.resolve_identity import IdentityChecks
from script_runner.discover.resolve_order import OrderChecks
from script_runner.discover.resolve_resources import ResourceChecks
from script_runner.discover.spec import Finding, ScriptSpec

if TYPE_CHECKING:
    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.directives import RawDirectives
    from script_runner.discover.spec import ScriptObject
    from script_runner.exceptions import DirectiveError


def resolve(obj: ScriptObject, raw: RawDirectives, settings: RunnerSettings) -> ScriptSpec:
    """Apply defaults, caps, allowlists and Autopilot rules to a script's directives.

    :raises DirectiveError: the first problem, naming the script, the line, the bad value and the fix.
    """
    spec, _ = _build(obj, raw, settings, collect=False)
    assert spec is not None  # without collect, a problem raises instead
    return spec


def resolve_all(
    obj: ScriptObject, raw: RawDirectives, settings: RunnerSettings
) -> tuple[ScriptSpec | None, list[DirectiveError]]:
    """Like :func:`resolve`, but every problem is returned (the spec is None when there is any).

    :param obj: the script.
    :param raw: its directives.
    :param settings: the settings the directives are checked against.
    """
    return _build(obj, raw, settings, collect=True)


def _build(
    obj: ScriptObject, raw: RawDirectives, settings: RunnerSettings, *, collect: bool
) -> tuple[ScriptSpec | None, list[DirectiveError]]:
    r = _Resolver(obj.path, raw, settings, collect=collect)
    cpu, memory = r.attempt(r.cpu), r.attempt(r.memory)
    fields = {
        "ephemeral_storage": r.attempt(r.storage),
        "timeout": r.attempt(r.duration, "timeout", settings.timeout, settings.max_timeout),
        "start_timeout": r.attempt(r.duration, "start_timeout", settings.start_timeout, None),
        "retries": r.attempt(r.retries),
        "retry_delay": r.attempt(r.duration, "retry_delay", settings.retry_delay, settings.max_retry_delay),
        "image": r.attempt(r.image),
        "service_account": r.attempt(r.service_account),
        "impersonate": r.attempt(r.impersonate),
        "secrets": r.attempt(r.secrets),
        "needs": r.attempt(r.needs),
        "retry_on": r.attempt(r.codes, "retry_on"),
        "fail_on": r.attempt(r.codes, "fail_on"),
        "skip_on": r.attempt(r.codes, "skip_on"),
        "oom_retry": r.attempt(r.boolean, "oom_retry"),
        "fault": r.attempt(r.fault),
        "after": r.attempt(r.after),
        "schedule": r.attempt(r.schedule),
    }
    if r.errors or cpu is None or memory is None:
        return None, sorted(r.errors, key=lambda e: e.line or 0)
    notes: list[str] = []
    platform = platform_of(settings)
    if platform:
        cpu, memory, notes = autopilot_bend(cpu, memory, label=platform)
        storage = parse_bytes(str(fields["ephemeral_storage"]))
        if storage < AUTOPILOT_MIN_STORAGE:
            fields["ephemeral_storage"] = format_bytes(AUTOPILOT_MIN_STORAGE)
            notes.append(f"{platform}: ephemeral_storage {format_bytes(storage)} -> 10Mi")
    spec = ScriptSpec(
        path=obj.path,
        uri=obj.uri,
        generation=obj.generation,
        md5=obj.md5,
        size=obj.size,
        cpu=format_cpu(cpu),
        memory=format_bytes(memory),
        env=dict(raw.env),
        notes=notes,
        warnings=[Finding(line=line, message=msg, fix=fix) for line, msg, fix in r.warnings],
        **{**fields, "retry_on": fields["retry_on"] or None},
    )
    return spec, []


class _Resolver(ResourceChecks, IdentityChecks, AttemptChecks, OrderChecks):
    """Every directive family's checks over one script's directives (the core: :class:`ResolverCore`)."""
