"""How a script's directives become its :class:`~script_runner.discover.spec.ScriptSpec`: defaults, caps,
allowlists and the platform's resource rules applied, every problem named with its line and fix."""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING, Any, TypeVar

from script_runner.config.platform_rules import (
    AUTOPILOT_MIN_STORAGE,
    PLATFORM_MAX,
    PLATFORM_NAMES,
    autopilot_bend,
    platform_of,
)
from script_runner.config.settings import SECRET_RESOURCE
from script_runner.config.units import format_bytes, format_cpu, parse_bytes, parse_cpu, parse_duration
from script_runner.discover.spec import ScriptSpec
from script_runner.exceptions import DirectiveError

if TYPE_CHECKING:
    from collections.abc import Callable
    from decimal import Decimal

    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.directives import RawDirectives
    from script_runner.discover.spec import ScriptObject

_SA_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NEEDS = re.compile(r"^(gs://[a-z0-9][-a-z0-9_.]*(/\S*)?|bq:(?:[\w.-]+:)?[\w.-]+:[\w.-]+):(read|write)$")
LOCAL_FAULTS = {"oom", "evict", "preempt", "node_shutdown", "unschedulable", "image_pull"}


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


_T = TypeVar("_T")


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
        **{**fields, "retry_on": fields["retry_on"] or None},
    )
    return spec, []


class _Resolver:
    def __init__(self, script: str, raw: RawDirectives, settings: RunnerSettings, *, collect: bool) -> None:
        self.script, self.raw, self.s = script, raw, settings
        self.collect = collect
        self.errors: list[DirectiveError] = []

    def attempt(self, check: Callable[..., _T], *args: Any) -> _T | None:
        """Run one check; a problem is raised, or recorded (None returned) when collecting."""
        try:
            return check(*args)
        except DirectiveError as err:
            if not self.collect:
                raise
            self.errors.append(err)
            return None

    def fail(self, key: str, message: str, fix: str) -> DirectiveError:
        if not message.startswith(f"{key}="):
            message = f"{key}: {message}"  # always name the directive, whatever the parser said
        return DirectiveError(script=self.script, line=self.raw.lines.get(key), message=message, fix=fix)

    def value(self, key: str, default: str) -> str:
        return self.raw.values.get(key, default)

    def cpu(self) -> Decimal:
        text = self.value("cpu", self.s.cpu)
        try:
            cpu = parse_cpu(text)
        except ValueError as exc:
            raise self.fail("cpu", str(exc), "write cpu=500m or cpu=2") from exc
        if cpu > parse_cpu(self.s.max_cpu):
            raise self.fail(
                "cpu",
                f"cpu={text} is above the cap {self.s.max_cpu}",
                f"ask for at most cpu={self.s.max_cpu} or raise max_cpu in the settings",
            )
        self.platform_max("cpu", text, cpu, parse_cpu)
        return cpu

    def memory(self) -> Decimal:
        text = self.value("memory", self.s.memory)
        try:
            memory = parse_bytes(text)
        except ValueError as exc:
            raise self.fail("memory", str(exc), "write memory=512Mi or memory=2Gi") from exc
        if memory > parse_bytes(self.s.max_memory):
            raise self.fail(
                "memory",
                f"memory={text} is above the cap {self.s.max_memory}",
                f"ask for at most memory={self.s.max_memory} or raise max_memory in the settings",
            )
        self.platform_max("memory", text, memory, parse_bytes)
        return memory

    def storage(self) -> str:
        text = self.value("ephemeral_storage", self.s.ephemeral_storage)
        try:
            amount = parse_bytes(text)
        except ValueError as exc:
            raise self.fail("ephemeral_storage", str(exc), "write ephemeral_storage=2Gi") from exc
        if amount > parse_bytes(self.s.max_ephemeral_storage):
            raise self.fail(
                "ephemeral_storage",
                f"ephemeral_storage={text} is above the cap {self.s.max_ephemeral_storage}",
                "ask for less or raise max_ephemeral_storage",
            )
        self.platform_max("ephemeral_storage", text, amount, parse_bytes)
        return format_bytes(amount)

    def platform_max(self, key: str, text: str, amount: Decimal, parse: Callable[[str], Decimal]) -> None:
        """Refuse a value above what the platform supports (it refuses such a pod instead of bending it)."""
        platform = platform_of(self.s)
        if platform and amount > parse(PLATFORM_MAX[key]):
            raise self.fail(
                key,
                f"{key}={text} is above what {PLATFORM_NAMES[platform]} supports ({PLATFORM_MAX[key]})",
                f"ask for at most {key}={PLATFORM_MAX[key]}",
            )

    def duration(self, key: str, default: str, cap: str | None) -> int:
        text = self.value(key, default)
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise self.fail(key, str(exc), f"write {key}=30m (forms: 90s, 30m, 1h30m, 2d)") from exc
        if seconds <= 0:
            raise self.fail(key, f"{key}={text} must be more than 0", f"write e.g. {key}=30m")
        if cap is not None and seconds > parse_duration(cap):
            raise self.fail(key, f"{key}={text} is above the cap {cap}", f"use at most {key}={cap}")
        return seconds

    def retries(self) -> int:
        text = self.value("retries", str(self.s.retries))
        if not text.isdigit():
            raise self.fail("retries", f"retries={text!r} is not a whole number", "write retries=2")
        if int(text) > self.s.max_retries:
            raise self.fail(
                "retries",
                f"retries={text} is above the cap {self.s.max_retries}",
                f"use at most retries={self.s.max_retries}",
            )
        return int(text)

    def image(self) -> str:
        default = self.s.image or ""
        image = self.value("image", default)
        if not image:
            raise self.fail(
                "image",
                "no runner image is configured",
                "set SCRIPT_RUNNER_IMAGE (or image in the Variable) to your runner image",
            )
        if image != default and not any(fnmatch.fnmatchcase(image, p) for p in self.s.image_allowlist):
            allowed = ", ".join(self.s.image_allowlist) or "none: only the default image"
            raise self.fail(
                "image",
                f"image {image!r} is not in the image allowlist ({allowed})",
                "use the default image or add a pattern to image_allowlist in the settings",
            )
        return image

    def service_account(self) -> str | None:
        """The pod's Kubernetes service account (ksa mode: the directive's; impersonate: the setting's)."""
        name = self.raw.values.get("service_account")
        if name is None or self.s.identity_mode == "impersonate":
            return self.s.service_account
        if self.s.composer3_rules:
            raise self.fail(
                "service_account",
                f"service_account={name}: Cloud Composer 3 has no custom Kubernetes service accounts",
                "remove the directive: pods run as the environment's service account; grant it what "
                "the script needs",
            )
        if not _SA_NAME.match(name) or len(name) > 253:
            raise self.fail(
                "service_account",
                f"service_account {name!r} is not a Kubernetes name",
                "use lower-case letters, digits and '-'",
            )
        if name != self.s.service_account and name not in self.s.service_account_allowlist:
            allowed = ", ".join(self.s.service_account_allowlist) or "none"
            raise self.fail(
                "service_account",
                f"service account {name!r} is not allowed (allowed: {allowed})",
                "use an allowed service account or add it to service_account_allowlist",
            )
        return name

    def impersonate(self) -> str | None:
        """identity_mode=impersonate: the email of the Google service account the script runs as."""
        name = self.raw.values.get("service_account")
        if name is None or self.s.identity_mode != "impersonate":
            return None
        targets = self.s.impersonation_targets()
        if name not in targets:
            allowed = ", ".join(k for k in targets if "@" not in k) or "none"
            raise self.fail(
                "service_account",
                f"service account {name!r} is not allowed to be impersonated (allowed: {allowed})",
                "use an allowed service account or add it to service_account_allowlist "
                '(a map short name -> email, e.g. {"loader": "loader@my-project.iam.gserviceaccount.com"})',
            )
        return targets[name]

    def secrets(self) -> list[str]:
        """secret= directives as full resource names with their target, checked against the settings."""
        out: list[str] = []
        seen_targets: dict[str, str] = {}
        for ref, target in self.raw.secrets:
            resource = self.s.secrets.get(ref, ref)
            match = SECRET_RESOURCE.match(resource)
            if match is None:
                known = ", ".join(self.s.secrets) or "none"
                raise self.fail(
                    "secret",
                    f"secret {ref!r} is neither projects/P/secrets/S[/versions/V] nor a name in the "
                    f"secrets setting (known: {known})",
                    "write the full name, e.g. secret=projects/my-project/secrets/db-password:PGPASSWORD, "
                    "or add the short name to the secrets setting",
                )
            if match.group(3) is None:
                resource += "/versions/latest"
            key = f"file:{match.group(2)}" if target == "file" else target
            if key in seen_targets or (target != "file" and target in self.raw.env):
                raise self.fail(
                    "secret",
                    f"secret {ref!r}: {target if target != 'file' else 'file ' + match.group(2)} is "
                    "already set by another secret= or env= directive",
                    "give each secret its own variable (or file)",
                )
            seen_targets[key] = resource
            out.append(f"{resource}:{target}")
        return out

    def needs(self) -> list[str]:
        for need in self.raw.needs:
            if not _NEEDS.match(need):
                raise self.fail(
                    "needs",
                    f"needs {need!r} is not gs://bucket/prefix:read|write or bq:project:dataset:read|write",
                    "write needs=gs://my-bucket/out/:write",
                )
        return list(self.raw.needs)

    def codes(self, key: str) -> list[int]:
        text = self.raw.values.get(key, "")
        codes = [p.strip() for p in text.split(",") if p.strip()]
        if not all(p.isdigit() and 0 < int(p) < 256 for p in codes):
            raise self.fail(key, f"{key}={text!r} is not a list of exit codes 1-255", f"write {key}=2,3")
        return [int(p) for p in codes]

    def boolean(self, key: str) -> bool:
        text = self.raw.values.get(key, "false").lower()
        if text not in ("true", "false", "yes", "no", "1", "0"):
            raise self.fail(key, f"{key}={text!r} is not true or false", f"write {key}=true")
        return text in ("true", "yes", "1")

    def after(self) -> list[str]:
        for ref in self.raw.after:
            if ref.startswith("/") or ref.startswith("gs://") or ".." in ref.split("/"):
                raise self.fail(
                    "after",
                    f"after={ref!r} is not a path under the source",
                    "name scripts relative to the source root, e.g. after=etl/extract.sh,etl/dims/*.sh",
                )
        return [ref.removeprefix("./") for ref in self.raw.after]

    def schedule(self) -> str | None:
        from script_runner.discover.schedule import cron_of

        text = self.raw.values.get("schedule")
        if text is None:
            return None
        try:
            cron_of(text)
        except ValueError as exc:
            raise self.fail(
                "schedule",
                f"schedule={text}: {exc}",
                "write a cron expression (minute hour day month weekday), e.g. schedule=0 6 * * 1, "
                "or a preset: @hourly, @daily, @weekly, @monthly, @yearly",
            ) from exc
        return text.strip()

    def fault(self) -> str | None:
        fault = self.raw.values.get("fault")
        if fault is None:
            return None
        if not self.s.local_faults:
            raise self.fail(
                "fault",
                "fault= is only honoured on the local stack",
                "remove the fault directive (it is for local testing)",
            )
        kind = fault.split(",", 1)[0]
        if kind not in LOCAL_FAULTS:
            raise self.fail(
                "fault", f"fault {kind!r} is unknown", f"use one of {', '.join(sorted(LOCAL_FAULTS))}"
            )
        return fault
