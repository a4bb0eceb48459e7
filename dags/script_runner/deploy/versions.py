"""Which Airflow and provider versions ``script-runner deploy`` accepts, and why it refuses the others.

The support table is data: ``compat/support.json`` (written by ``make compat``) is the default;
the built-in one below is the fallback for an installed package; ``--support-table`` names
another. Both have one shape::

    {"sets": [{"airflow": "2.11.1",
               "providers": {"cncf-kubernetes": "10.11.1", "google": "22.2.0"},
               "passed": true}]}

(``apache-airflow-providers-google`` or ``google``; providers may also sit beside ``airflow``.)

A set says: this Airflow release with at least these provider versions was tested. A set with
``"passed": false`` (or ``"supported": false``) is ignored. ``"commit"`` is the commit the set passed on:
deploy refuses a set whose commit is older than the last change to ``dags/`` (``provenance``) unless
``--allow-unproven``. ``compat/support.json`` of the checkout is the default table. An Airflow version is
accepted when a set has the same release, or an earlier patch release of the same minor (a later patch of a
tested minor, e.g. 3.3.2 for 3.3.1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from script_runner.deploy.provenance import provenance
from script_runner.exceptions import DeployError

if TYPE_CHECKING:
    from pathlib import Path

# The providers the DAG needs, by their short name (the package name without "apache-airflow-providers-").
PROVIDERS = ("cncf-kubernetes", "google")

# The fallback when the checkout has no compat/support.json (an installed package): the releases
# `make compat` tested, without a commit to check against (every deploy with it warns).
BUILTIN_SUPPORT: dict[str, Any] = {
    "sets": [
        {"airflow": release, "providers": {"cncf-kubernetes": "10.11.1", "google": "22.2.0"}, "passed": True}
        for release in ("2.11.1", "3.1.8", "3.3.1")
    ]
}


@dataclass(frozen=True)
class TestedSet:
    """One passed set: its Airflow release, provider minimums, name and the commit it passed on."""

    release: str
    providers: dict[str, str]
    name: str = ""
    commit: str | None = None


@dataclass(frozen=True)
class Versions:
    """What an environment runs: Airflow, and the providers where known (None: the image's own)."""

    airflow: str
    providers: dict[str, str | None] = field(default_factory=dict)
    source: str = ""

    def describe(self) -> str:
        """One line for the plan, e.g. ``Airflow 2.11.1, cncf-kubernetes 10.14.0, google (image default)``."""
        parts = [f"Airflow {self.airflow}"]
        for name in PROVIDERS:
            parts.append(f"{name} {self.providers.get(name) or '(image default)'}")
        return ", ".join(parts) + (f" [{self.source}]" if self.source else "")


@dataclass(frozen=True)
class SupportTable:
    """Tested sets: Airflow release -> minimum provider versions."""

    sets: tuple[TestedSet, ...]
    origin: str
    root: Path | None = None  # the checkout the commits are checked against (None: not checked)

    def check(self, versions: Versions) -> list[str]:
        """Why ``versions`` is outside the table (empty when it is supported).

        :param versions: the environment's versions; a provider of None is the image's own, which the set
            of its Airflow release was tested with.
        """
        tested = ", ".join(s.release for s in self.sets)
        found = self.matching(versions)
        if found is None:
            return [
                f"Airflow {versions.airflow} is not supported (tested: {tested}; a later patch release of "
                f"one of these is accepted; a release is added by `make compat` once its set passes) "
                f"[{self.origin}]"
            ]
        _release, minimums = found.release, found.providers
        problems = []
        for name, minimum in sorted(minimums.items()):
            have = versions.providers.get(name)
            if have is not None and _version(have, name) < _version(minimum, name):
                problems.append(
                    f"apache-airflow-providers-{name} {have} is older than {minimum}, the oldest tested "
                    f"with Airflow {_release} [{self.origin}]"
                )
        return problems

    def matching(self, versions: Versions) -> TestedSet | None:
        """The newest tested set of the same minor at or below ``versions.airflow``."""
        airflow = _version(versions.airflow, "Airflow")
        matching = [
            s
            for s in self.sets
            if _same_minor(airflow, _version(s.release, "Airflow"))
            and airflow >= _version(s.release, "Airflow")
        ]
        return max(matching, key=lambda s: _version(s.release, "Airflow")) if matching else None

    def unproven(self, versions: Versions, *, allow: bool) -> list[str]:
        """Warnings when the matching set's result is older than the DAG code (raises unless ``allow``).

        :param versions: supported versions (``check`` found no problem).
        :param allow: ``--allow-unproven``: warn instead of refusing.
        :raises DeployError: the set's commit is older than the last change to ``dags/``.
        """
        found = self.matching(versions)
        if found is None:
            return []
        if self.root is None:
            return [f"the {self.origin} is not checked against this code (no compat/support.json here)"]
        seen = provenance(found.commit, self.root)
        if seen.state == "proven":
            return []
        name = found.name or found.release
        text = f"Airflow {found.release} is unproven on this code: {seen.reason} [{self.origin}]"
        if seen.state == "unknown" or allow:
            return [text]
        raise DeployError(
            f"refusing to deploy to {versions.describe()}: {text}; run `python -m local.compat_matrix "
            f"--only {name}` (make compat) to prove it, or pass --allow-unproven to deploy anyway"
        )


def default_table_path(dags_dir: Path) -> Path | None:
    """The checkout's ``compat/support.json`` (what ``make compat`` writes), if there is one."""
    path = dags_dir.parent / "compat" / "support.json"
    return path if path.is_file() else None


def load_support_table(path: Path | None = None, *, root: Path | None = None) -> SupportTable:
    """The support table from ``path`` (``compat/support.json``'s shape), or the built-in one.

    :param path: a JSON file; None for the built-in table.
    :param root: the checkout whose ``dags/`` the recorded commits are compared with.
    """
    if path is None:
        return _table(BUILTIN_SUPPORT, "built-in support table")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DeployError(f"cannot read the support table {path}: {exc}") from exc
    return _table(data, str(path), root)


def _table(data: Any, origin: str, root: Path | None = None) -> SupportTable:
    sets = data.get("sets") if isinstance(data, dict) else None
    if not isinstance(sets, list):
        raise DeployError(f'{origin}: expected {{"sets": [{{"airflow": ..., "providers": {{...}}}}]}}')
    out = []
    for entry in sets:
        # "passed" (this module's shape) or "supported" (what `make compat` writes in compat/support.json)
        if not isinstance(entry, dict) or False in (entry.get("passed", True), entry.get("supported", True)):
            continue
        release = str(
            entry.get("airflow") or entry.get("apache-airflow") or entry.get("airflow_version") or ""
        )
        _version(release, f"Airflow in {origin}")
        # Providers nested under "providers", or beside "airflow" (either spelling of the package name).
        given = {**{k: v for k, v in entry.items() if k != "providers"}, **dict(entry.get("providers") or {})}
        providers = {_short(str(k)): str(v) for k, v in given.items() if _short(str(k)) and v}
        out.append(
            TestedSet(
                release=release,
                providers={k: v for k, v in providers.items() if k in PROVIDERS},
                name=str(entry.get("name") or release),
                commit=str(entry["commit"]) if entry.get("commit") else None,
            )
        )
    if not out:
        raise DeployError(f"{origin}: no supported (passed) set")
    return SupportTable(sets=tuple(out), origin=origin, root=root)


def parse_versions_option(text: str) -> Versions:
    """``airflow=2.11.1,cncf-kubernetes=10.14.0,google=22.2.2`` (providers optional) as Versions.

    :param text: the ``--versions`` value.
    """
    values: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise DeployError(f"--versions: {part!r} is not name=version")
        values[_short(key.strip()) or key.strip()] = value.strip()
    airflow = values.pop("airflow", None) or values.pop("apache-airflow", None)
    if not airflow:
        raise DeployError("--versions needs airflow=X.Y.Z (e.g. airflow=2.11.1,cncf-kubernetes=10.14.0)")
    unknown = sorted(set(values) - set(PROVIDERS))
    if unknown:
        raise DeployError(f"--versions: unknown package {', '.join(unknown)}; use {', '.join(PROVIDERS)}")
    return Versions(airflow=airflow, providers=dict(values), source="--versions")


def versions_from_describe(env: dict[str, Any]) -> Versions:
    """Airflow from the image version, providers from the PyPI packages the environment adds.

    :param env: ``gcloud composer environments describe --format=json`` output.
    """
    software = dict(env.get("config", {}).get("softwareConfig", {}))
    image = str(software.get("imageVersion", ""))
    match = re.search(r"airflow-(\d+\.\d+\.\d+)", image)
    if not match:
        raise DeployError(f"cannot read the Airflow version from the image version {image!r}")
    providers: dict[str, str | None] = {}
    for package, spec in dict(software.get("pypiPackages") or {}).items():
        name = _short(str(package))
        pinned = re.fullmatch(r"\s*==\s*([0-9][0-9A-Za-z.]*)\s*", str(spec))
        if name in PROVIDERS and pinned:
            providers[name] = pinned.group(1)
        elif name in PROVIDERS:
            raise DeployError(
                f"the environment installs apache-airflow-providers-{name}{spec}: only an exact pin "
                "(==X.Y.Z) can be checked; pin it or pass --versions"
            )
    return Versions(airflow=match.group(1), providers=providers, source=f"image {image}")


def _short(package: str) -> str:
    name = package.lower().replace("_", "-").strip()
    name = name.removeprefix("apache-airflow-providers-")
    return name if name in PROVIDERS or name in ("airflow", "apache-airflow") else ""


def _version(text: str, what: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion as exc:
        raise DeployError(f"{what} version {text!r} is not a version number") from exc


def _same_minor(a: Version, b: Version) -> bool:
    return a.release[:2] == b.release[:2]
