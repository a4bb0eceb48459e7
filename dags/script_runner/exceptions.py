"""Errors raised by the package; each message names the script and the fix."""

from __future__ import annotations


class ScriptRunnerError(Exception):
    """Base class for every error this package raises on purpose."""


class SettingsError(ScriptRunnerError):
    """The runner settings (preset, Variable or environment) are invalid."""


class DirectiveError(ScriptRunnerError):
    """A script header directive is invalid; carries the script, line and fix."""

    def __init__(self, *, script: str, line: int | None, message: str, fix: str) -> None:
        self.script = script
        self.line = line
        self.message = message
        self.fix = fix
        where = f"{script}:{line}" if line else script
        super().__init__(f"{where}: {message} (fix: {fix})")


class DiscoveryError(ScriptRunnerError):
    """The script source cannot be listed (missing bucket, no permission, bad URI)."""


class TooManyScriptsError(ScriptRunnerError):
    """More scripts than the configured shards can map; raised before anything is launched."""


class DeployError(ScriptRunnerError):
    """``script-runner deploy`` refuses or cannot reach the environment; the message says why and the fix."""
