"""Discovery: list the scripts in the source at run time, read their headers, validate, plan; shard.

One bad script never stops the others: it comes back as :class:`~script_runner.discover.spec.Rejected`. Every
decision (allowlists, caps, reserved names, faults) is taken here from the current settings on every run;
the header cache only saves downloads.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from script_runner.config import constants as c
from script_runner.config.identity_bindings import binding_matches
from script_runner.discover import dependencies
from script_runner.discover.content import header_text
from script_runner.discover.directives import parse_directives
from script_runner.discover.header_cache import HeaderCache, directive_text
from script_runner.discover.resolve import resolve_all
from script_runner.discover.selection import Selector, parse_runnerignore
from script_runner.discover.sources import make_source
from script_runner.discover.spec import Rejected, ScriptObject, spec_to_xcom
from script_runner.exceptions import DirectiveError, TooManyScriptsError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from google.cloud.storage import Client

    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.sources import Source

log = logging.getLogger(__name__)


@dataclass
class DiscoveryResult:
    """What discovery found: scripts to launch and scripts rejected."""

    # Scripts to launch in their wire form: what goes to XCom and what ScriptSpec.model_validate reads.
    specs: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    # Scripts not launched in this run, with a report row each: skipped (a dependency was rejected), not due,
    # dry run. Rows of {"path", "status", "reason"}.
    held: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0
    cache_hits: int = 0

    def summary(self) -> dict[str, int]:
        """Counts for the log and the report."""
        return {
            "launch": len(self.specs),
            "rejected": len(self.rejected),
            "held": len(self.held),
            "ignored": self.ignored,
            "header_cache_hits": self.cache_hits,
        }


def discover(
    settings: RunnerSettings, *, client: Client | None = None, cache: HeaderCache | None = None
) -> DiscoveryResult:
    """List the source, read headers concurrently (skipping cached ones), resolve each script.

    :param settings: the resolved runner settings.
    :param client: a google-cloud-storage client for gs:// sources (made from defaults if None).
    :param cache: header cache by content md5; headers of unchanged scripts are not downloaded.
    :raises DiscoveryError: when the source itself cannot be listed.
    """
    cache = cache or HeaderCache()
    source = make_source(settings, client)
    # The cache object, the listing and .runnerignore are independent reads: overlap them.
    with ThreadPoolExecutor(max_workers=2) as pool:
        loading = pool.submit(cache.ensure_loaded)
        ignoring = pool.submit(lambda: parse_runnerignore(source.read_file(c.RUNNERIGNORE)))
        objects = source.list()
        ignore = ignoring.result()
        loading.result()
    result = DiscoveryResult()
    pick = Selector(settings.include, settings.exclude + ignore)
    selected = [o for o in objects if pick(o.path)]
    result.ignored = len(objects) - len(selected)
    headers = _headers(selected, source, settings, cache)
    result.specs, result.rejected, result.held = plan_scripts(selected, headers, settings)
    if len(result.specs) > settings.max_scripts:
        raise TooManyScriptsError(
            f"{len(result.specs)} scripts found under {settings.source}, "
            f"above max_scripts={settings.max_scripts}; "
            "nothing was launched (fix: raise max_scripts, best as SCRIPT_RUNNER_MAX_SCRIPTS in the Airflow "
            "environment, which also gives the DAG enough run tasks; or split the folder)"
        )
    result.cache_hits = cache.hits
    cache.save({o.md5 for o in selected if o.md5})
    for rej in result.rejected:
        for problem in rej.problems():
            where = f" line {problem.line}" if problem.line else ""
            log.warning("rejected %s%s: %s (fix: %s)", rej.path, where, problem.message, problem.fix)
    return result


def plan_scripts(
    objects: list[ScriptObject],
    headers: Mapping[str, str | Rejected],
    settings: RunnerSettings,
    *,
    also_known: Iterable[str] = (),
) -> tuple[list[dict[str, Any]], list[Rejected], list[dict[str, Any]]]:
    """Every check discovery makes on a set of scripts, given their directive text: each header under the
    settings, then ``after=`` across them (unknown references, cycles). ``lint`` runs this same function.

    :param objects: the selected scripts (paths under the source root).
    :param headers: each path's directive text, or why its content was rejected.
    :param settings: the settings the headers are checked against.
    :param also_known: more scripts an ``after=`` may name (see :func:`dependencies.resolve`).
    :returns: the specs to launch (wire form), the rejected scripts, the held-back dependents.
    """
    plan = _Planner(settings)
    specs: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    for obj in objects:
        header = headers[obj.path]
        outcome = header if isinstance(header, Rejected) else plan(obj, header)
        if isinstance(outcome, Rejected):
            rejected.append(outcome)
        else:
            specs.append(outcome)
    graph = dependencies.resolve(specs, rejected, also_known=also_known)
    return graph.specs, [*rejected, *graph.rejected], graph.skipped


def _headers(
    selected: list[ScriptObject], source: Source, settings: RunnerSettings, cache: HeaderCache
) -> dict[str, str | Rejected]:
    """Directive text (or why not) per path: from the cache by md5, else read (misses concurrently)."""

    def outcome_of(obj: ScriptObject, data: bytes | Exception) -> str | Rejected:
        if isinstance(data, Exception):  # a read error rejects this script only
            return Rejected(
                path=obj.path,
                uri=obj.uri,
                reason=f"cannot read the script header: {data}",
                fix="check that the object still exists and the Airflow identity can read it",
            )
        try:
            text = directive_text(header_text(obj.path, data, size=obj.size))
        except DirectiveError as err:  # empty, binary or CRLF: not cached, so read again next run
            return Rejected.from_error(obj, err)
        cache.put(obj.md5, text)
        return text

    # Cached headers need no I/O; only the misses are read (all at once, by the source).
    # Copies of one content (same md5) are read once and count as cache hits.
    headers: dict[str, str | Rejected] = {}
    misses: dict[str, list[ScriptObject]] = {}
    for obj in selected:
        cached = cache.get(obj.md5)
        if cached is not None:
            headers[obj.path] = cached
        elif obj.md5 and obj.md5 in misses:
            misses[obj.md5].append(obj)
            cache.hits += 1
        else:
            misses[obj.md5 or obj.path] = [obj]
    if misses:
        firsts = [group[0] for group in misses.values()]
        # Empty objects need no read (their header is empty); the rest go out together.
        to_read = [o for o in firsts if o.size != 0]
        read: dict[str, bytes | Exception] = dict(
            zip(
                (o.path for o in to_read),
                source.read_headers(to_read, settings.max_header_bytes, settings.discovery_concurrency),
                strict=True,
            )
        )
        for group in misses.values():
            outcome = outcome_of(group[0], read.get(group[0].path, b""))
            for obj in group:
                headers[obj.path] = (
                    outcome.model_copy(update={"path": obj.path, "uri": obj.uri})
                    if isinstance(outcome, Rejected)
                    else outcome
                )
    return headers


_OBJECT_FIELDS = {"path", "uri", "generation", "md5", "size"}


class _Planner:
    """Directive text → the script's wire-form spec or why it is rejected, under the current settings.

    Each distinct text is parsed and authorized once per run (most scripts share a few directive sets), so
    a warm discovery of 10 000 scripts validates a handful of headers, not 10 000.
    """

    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings
        self._memo: dict[tuple[str, str, tuple[str, ...]], dict[str, Any] | list[DirectiveError]] = {}

    def __call__(self, obj: ScriptObject, text: str) -> dict[str, Any] | Rejected:
        # What a header may name depends on the script's folder (identity_bindings): memo by both.
        folder = obj.path.rsplit("/", 1)[0] if "/" in obj.path else ""
        key = (
            text,
            folder,
            tuple(k for k in self.settings.identity_bindings if binding_matches(k, obj.path)),
        )
        outcome = self._memo.get(key)
        if outcome is None:
            outcome = self._memo[key] = self._resolve(text, obj.path)
        if isinstance(outcome, list):
            return Rejected.from_errors(obj, outcome)
        return {**_object_wire(obj), **outcome}

    def _resolve(self, text: str, path: str) -> dict[str, Any] | list[DirectiveError]:
        """The wire form without the object's fields, or every problem of the header (as lint finds)."""
        errors: list[DirectiveError] = []
        raw = parse_directives("", text, errors=errors)
        spec, more = resolve_all(ScriptObject(path=path, uri=""), raw, self.settings)
        if errors or spec is None:
            return sorted(errors + more, key=lambda e: e.line or 0)
        return {k: v for k, v in spec_to_xcom(spec).items() if k not in _OBJECT_FIELDS}


def _object_wire(obj: ScriptObject) -> dict[str, Any]:
    """The object's part of a spec's wire form (defaults dropped, as spec_to_xcom does)."""
    wire: dict[str, Any] = {"path": obj.path, "uri": obj.uri}
    if obj.generation:
        wire["generation"] = obj.generation
    if obj.md5:
        wire["md5"] = obj.md5
    if obj.size:
        wire["size"] = obj.size
    return wire


def shard(
    specs: list[dict[str, Any]], *, shards: int, max_map_length: int = c.DEFAULT_MAX_MAP_LENGTH
) -> list[list[dict[str, Any]]]:
    """Split specs into ``shards`` lists for the mapped run tasks, each at most ``max_map_length`` long.

    Scripts keep their sorted order and fill the shards in turn (each up to ``max_map_length``), so a run
    that fits in one shard uses the first run task only, and the later shards are empty (their producers
    skip without launching anything).

    :raises TooManyScriptsError: when the shards cannot hold them all (before anything is launched).
    """
    capacity = shards * max_map_length
    if len(specs) > capacity:
        raise TooManyScriptsError(
            f"{len(specs)} scripts do not fit in {shards} run task(s) of {max_map_length} (Airflow's "
            f"max_map_length); nothing was launched (fix: set SCRIPT_RUNNER_MAX_SCRIPTS={len(specs)} or "
            f"more, or SCRIPT_RUNNER_SHARDS={-(-len(specs) // max_map_length)} or more, in the Airflow "
            "environment: the DAG then has enough run tasks (its shape is read from the environment, never "
            "the Variable); or raise [core] max_map_length)"
        )
    ordered = sorted(specs, key=lambda s: str(s["path"]))
    return [ordered[i * max_map_length : (i + 1) * max_map_length] for i in range(shards)]
