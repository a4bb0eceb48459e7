"""The DAG's run parameters (the UI's trigger form) and the options of one run read back from them.

The raw conf keys of older releases keep working: a conf ``{"rerun": true}`` is a valid value of these
params, and the conf is read again at run time (it wins over the params' defaults).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Each Param is validated at every parse (DAG() checks its defaults) by jsonschema, which first checks the
# schema against its metaschema: 0.3 ms each against the default 2020-12 metaschema ($dynamicRef), 0.09 ms
# against draft 7's. The forms need nothing newer than draft 7 (types, items, titles).
_DRAFT7: dict[str, Any] = {"$schema": "http://json-schema.org/draft-07/schema#"}
_TEXT_LIST: dict[str, Any] = {"type": ["array", "null"], "items": {"type": "string"}, **_DRAFT7}


def dag_params() -> dict[str, Any]:
    """The params shown by the trigger form, each with a description (built once per DAG parse)."""
    # Imported here: RunOptions is also the CLI's, which must run without Airflow (the `lint` extra).
    from script_runner.config.compat import Param

    return {
        "only": Param(
            [],
            description="Run only the scripts matching these globs (paths under the source, one per line, "
            "e.g. etl/*.sh). Empty: every script. Schedules do not apply to a manual run.",
            title="Only these scripts",
            **_TEXT_LIST,
        ),
        "exclude": Param(
            [],
            description="Leave out the scripts matching these globs (one per line), on top of the "
            "exclude setting and .runnerignore.",
            title="Exclude",
            **_TEXT_LIST,
        ),
        "dry_run": Param(
            False,
            type="boolean",
            **_DRAFT7,
            description="Discover, validate and report what would run, in which order; launch nothing.",
            title="Dry run",
        ),
        "rerun": Param(
            False,
            type="boolean",
            **_DRAFT7,
            description="Run scripts that already succeeded for this run's interval (ignore done-markers).",
            title="Rerun",
        ),
        "reason": Param(
            "",
            type=["string", "null"],
            **_DRAFT7,
            description="Why this run was started (free text, kept in the run report).",
            title="Reason",
        ),
        "due_at": Param(
            None,
            type=["string", "null"],
            **_DRAFT7,
            description="Apply the scripts' schedule= as the scheduled run at this time (UTC, e.g. "
            "2026-12-07T06:00:00Z) would: only the scripts due then run. Empty: a manual run runs every "
            "selected script.",
            title="As scheduled at",
        ),
    }


@dataclass(frozen=True)
class RunOptions:
    """What the trigger asked of one run."""

    only: list[str] = field(default_factory=list)
    # Run on upload: the uploaded scripts, matched exactly (an object may be named *.sh or report[1].sh).
    uploaded: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    dry_run: bool = False
    rerun: bool = False  # or the rerun setting: either one turns done-markers off
    reason: str = ""
    due_at: str | None = None


def run_options(params: Any, conf: Any) -> RunOptions:
    """The run's options: the params' values, overridden by the raw conf (older triggers send only that).

    :param params: the run's params (``context["params"]``; a mapping, may be empty).
    :param conf: the dag run's conf (a mapping, JSON text or None).
    """
    merged: dict[str, Any] = dict(params or {})
    if isinstance(conf, str):
        conf = json.loads(conf or "{}")
    merged.update(dict(conf or {}))
    return RunOptions(
        only=_globs(merged.get("only")),
        uploaded=_paths(merged["uploaded"]) if merged.get("uploaded") is not None else None,
        exclude=_globs(merged.get("exclude")),
        dry_run=_flag(merged.get("dry_run")),
        rerun=_flag(merged.get("rerun")),
        reason=str(merged.get("reason") or "").strip(),
        due_at=str(merged.get("due_at") or "").strip() or None,
    )


def _globs(value: Any) -> list[str]:
    """A list of globs from a list, or from text with one glob per line or comma (a hand-written conf)."""
    if not value:
        return []
    items = value if isinstance(value, list | tuple) else str(value).replace(",", "\n").splitlines()
    return [str(v).strip() for v in items if str(v).strip()]


def _paths(value: Any) -> list[str]:
    """Exact paths from a list (or one path); never split, never globs."""
    items = value if isinstance(value, list | tuple) else [value]
    return [str(v) for v in items if str(v)]


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "on")
    return bool(value)
