"""Which Airflow and provider versions ``script-runner deploy`` accepts, and why it refuses the others.

The support table is data: the built-in one below states the README's facts; ``compat/support.json`` (written
by ``make compat``) can replace it (``--support-table``). Both have one shape::

    {"sets": [{"airflow": "2.11.1",
               "providers": {"cncf-kubernetes": "10.11.1", "google": "22.2.0"},
               "passed": true}]}

(``apache-airflow-providers-google`` or ``google``; providers may also sit beside ``airflow``.)

A set says: this Airflow release with at least these provider versions was tested. A set with
``"passed": false`` is ignored. An Airflow version is accepted when a set has the same release, or an
earlier patch release of the same minor (a later patch of a tested minor, e.g. 3.3.2 for 3.3.1).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from script_runner.exceptions import DeployError

if TYPE_CHECKING:
    from pathlib import Path

# The providers the DAG needs, by their short name (the package name without "apache-airflow-providers-").
PROVIDERS = ("cncf-kubernetes", "google")

# README's support facts: Composer's Airflow images, and the oldest providers the DAG works with.
BUILTIN_SUPPORT: dict[str, Any] = {
    "sets": [
        {"airflow": release, "providers": {"cncf-kubernetes": "10.11.1", "google": "22.2.0"}, "passed": True}
        for release in ("2.11.1", "3.1.8", "3.2.2", "3.3.1")
    ]
}


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

    sets: tuple[tuple[str, dict[str, str]], ...]
    origin: str

    def check(self, versions: Versions) -> list[str]:
        """Why ``versions`` is outside the table (empty when it is supported).

        :param versions: the environment's versions; a provider of None is the image's own, which the set
            of its Airflow release was tested with.
        """
        airflow = _version(versions.airflow, "Airflow")
        tested = ", ".join(release for release, _ in self.sets)
        matching = [
            (release, providers)
            for release, providers in self.sets
            if _same_minor(airflow, _version(release, "Airflow")) and airflow >= _version(release, "Airflow")
        ]
        if not matching:
            return [
                f"Airflow {versions.airflow} is not supported (tested: {tested}; a later patch release of "
                f"one of these is accepted) [{self.origin}]"
            ]
        _release, minimums = max(matching, key=lambda m: _version(m[0], "Airflow"))
        problems = []
        for name, minimum in sorted(minimums.items()):
            have = versions.providers.get(name)
            if have is not None and _version(have, name) < _version(minimum, name):
                problems.append(
                    f"apache-airflow-providers-{name} {have} is older than {minimum}, the oldest tested "
                    f"with Airflow {_release} [{self.origin}]"
                )
        return problems


def load_support_table(path: Path | None = None) -> SupportTable:
    """The support table from ``path`` (``compat/support.json``'s shape), or the built-in one.

    :param path: a JSON file; None for the built-in table.
    """
    if path is None:
        return _table(BUILTIN_SUPPORT, "built-in support table")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DeployError(f"cannot read the support table {path}: {exc}") from exc
    return _table(data, str(path))


def _table(data: Any, origin: str) -> SupportTable:
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
        out.append((release, {k: v for k, v in providers.items() if k in PROVIDERS}))
    if not out:
        raise DeployError(f"{origin}: no supported (passed) set")
    return SupportTable(sets=tuple(out), origin=origin)


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
