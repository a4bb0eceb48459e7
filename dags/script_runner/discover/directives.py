"""Header directives: ``# runner: cpu=500m memory=1Gi timeout=30m retries=2`` lines at the top of a script.

Only the leading comment block is read (shebang, comments and blank lines; the first command ends it).
Several ``# runner:`` lines add up; a key given twice is an error, except the repeatable ``env``,
``needs``, ``after`` and ``secret``. Values may be quoted shell-style: ``env="GREETING=hello world"``.
A ``# runner:`` line after the first command (``set -e``, say) is an error: its settings would otherwise be
silently ignored.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field

from script_runner.config import constants as c
from script_runner.config.env_names import reserved_env_reason
from script_runner.exceptions import DirectiveError

# key -> (what it takes, example) — also docs/reference/directives.md (generated) and `script-runner --help`.
KEYS: dict[str, tuple[str, str]] = {
    "cpu": ("cpu request and limit, a Kubernetes quantity", "cpu=500m"),
    "memory": ("memory request and limit", "memory=1Gi"),
    "ephemeral_storage": ("scratch disk for the work dir and /tmp", "ephemeral_storage=2Gi"),
    "timeout": ("longest run once started (pod activeDeadlineSeconds)", "timeout=30m"),
    "start_timeout": ("longest wait for the pod to start (scheduling, image pull)", "start_timeout=10m"),
    "retries": ("failed attempts retried (evictions and preemptions are not counted)", "retries=3"),
    "retry_delay": ("first retry delay; doubles each retry (exponential backoff)", "retry_delay=2m"),
    "service_account": (
        "the script's identity, from the allowlist: a Kubernetes service account (Workload Identity), or "
        "with identity_mode=impersonate a Google service account the pod impersonates",
        "service_account=loader",
    ),
    "image": ("runner image; must match the image allowlist", "image=my-runner:1.2"),
    "env": ("an environment variable for the script; repeatable", "env=TARGET=prod"),
    "needs": ("IAM preflight before the script runs; repeatable", "needs=gs://bucket/out/:write"),
    "secret": (
        "a Secret Manager secret (full name or a short name from the settings' secrets) read with the "
        "script's identity before it starts, into an env var, or :file for a 0600 file in "
        "$RUNNER_SECRETS_DIR; repeatable",
        "secret=projects/p/secrets/db-password/versions/latest:PGPASSWORD",
    ),
    "retry_on": ("exit codes that may be retried (default: all but fail_on)", "retry_on=1,75"),
    "fail_on": ("exit codes that fail at once, without retries", "fail_on=2,3"),
    "skip_on": ("exit codes that mean 'nothing to do': the task is skipped", "skip_on=10"),
    "oom_retry": ("after an OOMKilled, retry with memory x oom_memory_factor", "oom_retry=true"),
    "fault": ("local stack only: inject a fault into this script's pod", "fault=oom"),
    "after": (
        "start only once these scripts succeeded in the run (paths or globs under the source; repeatable)",
        "after=etl/extract.sh,etl/dims/*.sh",
    ),
    "schedule": (
        "run only in the scheduled runs whose interval holds one of its cron times (cron or @daily...)",
        "schedule=0 6 * * 1",
    ),
}
ALIASES = {
    "ephemeral-storage": "ephemeral_storage",
    "storage": "ephemeral_storage",
    "mem": "memory",
    "start-timeout": "start_timeout",
    "retry-delay": "retry_delay",
    "service-account": "service_account",
    "serviceaccount": "service_account",
    "retry-on": "retry_on",
    "fail-on": "fail_on",
    "skip-on": "skip_on",
    "oom-retry": "oom_retry",
}
REPEATABLE = {"env", "needs", "after", "secret"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class RawDirectives:
    """Directive values as written, with the line each came from (for error messages)."""

    values: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    # secret= values as written: (reference, target), target an env var name or "file".
    secrets: list[tuple[str, str]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)


def is_directive_line(line: str) -> bool:
    """Whether a header line (stripped) is a ``# runner:`` directive line."""
    return line.startswith("#") and line.lstrip("#").strip().lower().startswith(c.DIRECTIVE_PREFIX)


def header_lines(text: str) -> list[tuple[int, str]]:
    """The leading comment block as (line number, line) pairs; stops at the first command."""
    out: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if number > c.HEADER_LINES:
            break
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        out.append((number, stripped))
    return out


def late_directives(text: str) -> list[tuple[int, str]]:
    """``# runner:`` lines after the first command, within the first ``HEADER_LINES`` lines.

    They are not read as directives (the header ends at the first command), so a script that has one would
    run with settings its author did not mean: discovery and ``lint`` refuse it instead.
    """
    out: list[tuple[int, str]] = []
    started = False
    for number, line in enumerate(text.splitlines(), start=1):
        if number > c.HEADER_LINES:
            break
        stripped = line.strip()
        if not started:
            started = bool(stripped) and not stripped.startswith("#")
        elif is_directive_line(stripped):
            out.append((number, stripped))
    return out


def parse_directives(script: str, text: str, *, errors: list[DirectiveError] | None = None) -> RawDirectives:
    """Parse the ``# runner:`` lines of a script's header.

    :param script: the script's path, for error messages.
    :param text: the start of the script (at least its header).
    :param errors: when given, every problem is appended here and parsing goes on (``lint`` reports them
        all); when None, the first problem is raised.
    :raises DirectiveError: on an unknown key, a malformed token, a reserved env name or a repeated key
        (only when ``errors`` is None).
    """
    raw = RawDirectives()
    head = header_lines(text)
    for number, line in head:
        if not is_directive_line(line):
            continue
        body = line.lstrip("#").strip()[len(c.DIRECTIVE_PREFIX) :]
        try:
            # shlex only when quoting is used: it is ~20x slower than str.split on plain lines.
            tokens = shlex.split(body, comments=False) if any(q in body for q in "\"'\\") else body.split()
        except ValueError as exc:
            _report(
                errors,
                DirectiveError(
                    script=script,
                    line=number,
                    message=f"cannot split directive line ({exc})",
                    fix='close the quote, e.g. env="NAME=two words"',
                ),
            )
            continue
        _add_tokens(raw, tokens, script=script, line=number, errors=errors)
    for number, _ in late_directives(text):
        _report(
            errors,
            DirectiveError(
                script=script,
                line=number,
                message=f"# {c.DIRECTIVE_PREFIX} line after the first command (line {len(head) + 1}): "
                "the runner reads directives only from the header, so these settings would be ignored",
                fix="move the line into the header, before the first command",
            ),
        )
    return raw


def _add_tokens(
    raw: RawDirectives, tokens: list[str], *, script: str, line: int, errors: list[DirectiveError] | None
) -> None:
    """Add one line's tokens; a bare word after ``key=value`` is a value with an unquoted space."""
    in_schedule = False
    previous = ""
    for token in tokens:
        if in_schedule and "=" not in token:  # schedule=0 6 * * 1: cron fields are the next tokens
            raw.values["schedule"] += " " + token
            continue
        in_schedule = False
        try:
            if "=" not in token and previous:
                raise _unquoted_space(previous, token, script=script, line=line)
            _add_token(raw, script=script, line=line, token=token)
        except DirectiveError as err:
            _report(errors, err)
            previous = ""
            continue
        previous = token
        in_schedule = token.partition("=")[0].strip().lower() == "schedule"


# Keys whose values are durations: a space in one ("1 hour") is a unit written apart, not a quoting slip.
_DURATION_KEYS = {"timeout", "start_timeout", "retry_delay"}
_UNITS = {"second": "s", "sec": "s", "s": "s", "minute": "m", "min": "m", "m": "m", "hour": "h", "hr": "h"}
_UNITS |= {"h": "h", "day": "d", "d": "d"}


def _unquoted_space(previous: str, word: str, *, script: str, line: int) -> DirectiveError:
    """The error for ``env=GREETING=hi there`` or ``timeout=1 hour``: a value split at a space."""
    key, _, value = previous.partition("=")
    key = ALIASES.get(key.strip().lower(), key.strip().lower())
    if key in _DURATION_KEYS:
        unit = _UNITS.get(word.lower().rstrip("s") or "s")
        example = f"{value}{unit}" if unit and value.isdigit() else "1h30m"
        return DirectiveError(
            script=script,
            line=line,
            message=f"{key}={value} {word}: a duration has no spaces ({word!r} is read as another directive)",
            fix=f"write {key}={example} (forms: 90s, 30m, 1h30m, 2d)",
        )
    return DirectiveError(
        script=script,
        line=line,
        message=f"{word!r} is not key=value: the value of {key}= ends at the space before it",
        fix=f'quote values with spaces: {key}="{value} {word}"',
    )


def _report(errors: list[DirectiveError] | None, err: DirectiveError) -> None:
    if errors is None:
        raise err
    errors.append(err)


def _secret_token(value: str, *, script: str, line: int) -> tuple[str, str]:
    """(reference, target) of a ``secret=REF:ENVVAR`` or ``secret=REF:file`` value."""
    ref, colon, target = value.rpartition(":")
    if not colon or not ref or not target:
        raise DirectiveError(
            script=script,
            line=line,
            message=f"secret {value!r} is not NAME:ENVVAR or NAME:file",
            fix="write secret=db-password:PGPASSWORD or secret=projects/p/secrets/key/versions/latest:file",
        )
    if target == "file":
        return ref, target
    _check_env_name(
        target,
        script=script,
        line=line,
        subject=f"secret {value!r}:",
        invalid=(
            f"secret {value!r}: {target!r} is not an environment variable name",
            "name a variable of letters, digits and _ after the last ':' (or write :file)",
        ),
        reserved_fix=f"use another name, e.g. MY_{target}",
    )
    return ref, target


def _check_env_name(
    name: str, *, script: str, line: int, subject: str, invalid: tuple[str, str], reserved_fix: str
) -> None:
    """Raise unless ``name`` is a variable name a script may set (``env=``, ``secret=REF:NAME``).

    :param name: the variable name ("" when there is none).
    :param subject: what the reserved error starts with: "<subject> NAME is reserved: why".
    :param invalid: the (message, fix) of the error for a name that is not a variable name.
    :param reserved_fix: the fix of the error for a reserved name.
    :raises DirectiveError: on a malformed or reserved name.
    """
    if not _ENV_NAME.match(name):
        raise DirectiveError(script=script, line=line, message=invalid[0], fix=invalid[1])
    why = reserved_env_reason(name)
    if why is not None:
        raise DirectiveError(
            script=script, line=line, message=f"{subject} {name} is reserved: {why}", fix=reserved_fix
        )


def _add_token(raw: RawDirectives, *, script: str, line: int, token: str) -> None:
    key, sep, value = token.partition("=")
    key = key.strip().lower()
    key = ALIASES.get(key, key)
    if not sep or not key:
        raise DirectiveError(
            script=script,
            line=line,
            message=f"{token!r} is not key=value",
            fix="write directives as key=value, e.g. # runner: cpu=500m memory=1Gi",
        )
    if key not in KEYS:
        guess = difflib.get_close_matches(key, list(KEYS), n=1)
        hint = f"did you mean {guess[0]}=…?" if guess else f"known keys: {', '.join(KEYS)}"
        raise DirectiveError(script=script, line=line, message=f"unknown directive {key!r}", fix=hint)
    if key == "env":
        name, eq, env_value = value.partition("=")
        _check_env_name(
            name if eq else "",  # no '=': not NAME=value
            script=script,
            line=line,
            subject="env",
            invalid=(
                f"env {value!r} is not NAME=value",
                "write env=NAME=value with NAME of letters, digits and _",
            ),
            reserved_fix=f"use another name (e.g. MY_{name}) and read it in the script; what the runner "
            "needs belongs in the runner settings, not in env=",
        )
        raw.env[name] = env_value
    elif key == "needs":
        raw.needs.extend(v for v in value.split(",") if v)
    elif key == "after":
        raw.after.extend(v.strip() for v in value.split(",") if v.strip())
    elif key == "secret":
        raw.secrets.append(_secret_token(value, script=script, line=line))
    elif key in raw.values:
        raise DirectiveError(
            script=script,
            line=line,
            message=f"{key} is set twice (first on line {raw.lines[key]})",
            fix=f"keep one {key}=… directive",
        )
    else:
        raw.values[key] = value
    raw.lines.setdefault(key, line)
