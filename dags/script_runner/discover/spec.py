"""The resolved, validated plan for one script: the XCom payload and the models around it.

How directives become a :class:`ScriptSpec` is :mod:`script_runner.discover.resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from script_runner.exceptions import DirectiveError


@dataclass(frozen=True, slots=True)
class ScriptObject:
    """Where a script is: its path under the source and the pinned object version.

    A plain dataclass, not a model: discovery makes one per listed object (10 000s per run).
    """

    path: str
    uri: str
    generation: str = ""
    md5: str = ""
    size: int = 0
    updated: str = ""


class Finding(BaseModel):
    """One problem of a script's header: a further rejection reason, or a warning about a directive that
    is valid but likely not what its author meant (``memory=1G`` is 10^9 bytes)."""

    model_config = ConfigDict(frozen=True)

    line: int | None = None
    message: str
    fix: str


class ScriptSpec(BaseModel):
    """One script, ready to launch. Small on purpose: it travels through XCom once per script."""

    model_config = ConfigDict(frozen=True)

    path: str
    uri: str
    generation: str = ""
    md5: str = ""
    size: int = 0
    cpu: str
    memory: str
    ephemeral_storage: str
    timeout: int
    start_timeout: int
    retries: int
    retry_delay: int
    image: str
    service_account: str | None = None
    # identity_mode=impersonate: the Google service account the pod's own identity impersonates.
    impersonate: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    needs: list[str] = Field(default_factory=list)
    # secret= directives resolved: "projects/P/secrets/S/versions/V:TARGET" (an env name or "file").
    # References only: the values are read inside the pod, never here.
    secrets: list[str] = Field(default_factory=list)
    retry_on: list[int] | None = None
    fail_on: list[int] = Field(default_factory=list)
    skip_on: list[int] = Field(default_factory=list)
    oom_retry: bool = False
    fault: str | None = None
    # after=: patterns as written until discovery resolves them to paths (dependencies.py)
    after: list[str] = Field(default_factory=list)
    # where each dependency runs in this run: path -> (run task id, map index), set after sharding
    after_tasks: dict[str, tuple[str, int]] = Field(default_factory=dict)
    schedule: str | None = None
    notes: list[str] = Field(default_factory=list)
    # Shown by lint (as warnings) and plan; the script still runs.
    warnings: list[Finding] = Field(default_factory=list)


class Rejected(BaseModel):
    """A script that will not be launched, and why."""

    model_config = ConfigDict(frozen=True)

    path: str
    uri: str
    reason: str
    line: int | None = None
    fix: str = ""
    # The header's other problems (discovery and lint report them all, not only the first).
    more: list[Finding] = Field(default_factory=list)

    @classmethod
    def from_error(cls, obj: ScriptObject, err: DirectiveError) -> Rejected:
        """Build from a directive error."""
        return cls(path=obj.path, uri=obj.uri, reason=err.message, line=err.line, fix=err.fix)

    @classmethod
    def from_errors(cls, obj: ScriptObject, errors: list[DirectiveError]) -> Rejected:
        """Build from every problem of a header: the first as the reason, the others in ``more``."""
        first, *rest = errors
        more = [Finding(line=e.line, message=e.message, fix=e.fix) for e in rest]
        return cls(
            path=obj.path, uri=obj.uri, reason=first.message, line=first.line, fix=first.fix, more=more
        )

    def problems(self) -> list[Finding]:
        """Every problem, the reason first."""
        return [Finding(line=self.line, message=self.reason, fix=self.fix), *self.more]


def spec_to_xcom(spec: ScriptSpec) -> dict[str, Any]:
    """The spec as plain JSON, dropping defaults to keep XCom small."""
    return spec.model_dump(mode="json", exclude_defaults=True)
