"""The core of directive resolution: one check run at a time, its problem raised or collected.

:class:`ResolverCore` holds a script's directives and the settings they are checked against; the checks
themselves are mixins by directive family (``resolve_resources``, ``resolve_identity``,
``resolve_attempts``, ``resolve_order``), put together in :mod:`script_runner.discover.resolve`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from script_runner.exceptions import DirectiveError

if TYPE_CHECKING:
    from collections.abc import Callable

    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.directives import RawDirectives

_T = TypeVar("_T")


class ResolverCore:
    """A script's directives, the settings, and the problems found so far (when collecting)."""

    def __init__(self, script: str, raw: RawDirectives, settings: RunnerSettings, *, collect: bool) -> None:
        self.script, self.raw, self.s = script, raw, settings
        self.collect = collect
        self.errors: list[DirectiveError] = []
        # Valid but likely not meant (memory=1G): (line, message, fix); the script still runs.
        self.warnings: list[tuple[int | None, str, str]] = []

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

    def warn(self, key: str, message: str, fix: str) -> None:
        """Record a warning about ``key``'s directive (the script is not rejected for it)."""
        self.warnings.append((self.raw.lines.get(key), message, fix))

    def value(self, key: str, default: str) -> str:
        return self.raw.values.get(key, default)
