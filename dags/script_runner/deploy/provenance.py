"""Whether a compat result was measured on the DAG code being deployed: the recorded commit against git.

``make compat`` records, per set, the commit it passed on (``"commit"`` in ``compat/support.json``). A set
is *proven* for this checkout when no commit since that one touched ``dags/``: the last commit that changed
``dags/`` (``git log -1 --format=%H -- dags/``) is the recorded commit or one of its ancestors. Otherwise it
is *stale*: the support claim outlived the code it was measured on. Without git, or in a shallow clone that
lacks the recorded commit, nothing can be told (``unknown``), and the reason says so.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Provenance:
    """``proven``, ``stale`` or ``unknown``, with the commits compared and a sentence saying why."""

    state: Literal["proven", "stale", "unknown"]
    reason: str
    last_dags_change: str | None = None


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=60)


def last_dags_change(root: Path) -> str | None:
    """The last commit that changed ``dags/`` under ``root`` (None: not a git checkout)."""
    try:
        done = _git(root, "log", "-1", "--format=%H", "--", "dags/")
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def provenance(commit: str | None, root: Path) -> Provenance:
    """Whether a result recorded on ``commit`` covers the ``dags/`` of the checkout at ``root``.

    :param commit: the commit the set passed on (None: never recorded).
    :param root: the checkout (the folder holding ``dags/``).
    """
    if not commit:
        return Provenance("stale", "no commit recorded for this result (measured before commits were kept)")
    last = last_dags_change(root)
    if last is None:
        return Provenance("unknown", f"no git history at {root} to compare commit {commit[:12]} with")
    if last == commit:
        return Provenance("proven", f"measured on {commit[:12]}, the last change to dags/", last)
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        shallow = _git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"
        why = "a shallow clone (fetch the full history: git fetch --unshallow)" if shallow else "not here"
        return Provenance("unknown", f"recorded commit {commit[:12]} is {why}", last)
    if _git(root, "merge-base", "--is-ancestor", last, commit).returncode == 0:
        return Provenance("proven", f"measured on {commit[:12]}; dags/ last changed in {last[:12]}", last)
    return Provenance(
        "stale", f"measured on {commit[:12]}, but dags/ changed since (last in {last[:12]})", last
    )
