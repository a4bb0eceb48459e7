"""Discovery: list the scripts in the source at run time, read their headers, validate, plan.

One bad script never stops the others: it comes back as :class:`~script_runner.spec.Rejected`.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from script_runner import constants as c
from script_runner.directives import parse_directives
from script_runner.exceptions import DirectiveError, DiscoveryError, TooManyScriptsError
from script_runner.header_cache import HeaderCache, directive_text
from script_runner.spec import Rejected, ScriptObject, resolve, spec_to_xcom

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from google.cloud.storage import Client

    from script_runner.settings import RunnerSettings

log = logging.getLogger(__name__)
_LIST_FIELDS = "items(name,generation,md5Hash,size),nextPageToken"


@dataclass
class DiscoveryResult:
    """What discovery found: scripts to launch and scripts rejected."""

    # Scripts to launch in their wire form: what goes to XCom and what ScriptSpec.model_validate reads.
    specs: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    ignored: int = 0
    cache_hits: int = 0

    def summary(self) -> dict[str, int]:
        """Counts for the log and the report."""
        return {
            "launch": len(self.specs),
            "rejected": len(self.rejected),
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
    source = _make_source(settings, client)
    # The cache object, the listing and .runnerignore are independent reads: overlap them.
    with ThreadPoolExecutor(max_workers=2) as pool:
        loading = pool.submit(cache.ensure_loaded)
        ignoring = pool.submit(_ignore_patterns, source)
        objects = source.list()
        ignore = ignoring.result()
        loading.result()
    result = DiscoveryResult()
    pick = _Selector(settings.include, settings.exclude + ignore)
    selected = [o for o in objects if pick(o.path)]
    result.ignored = len(objects) - len(selected)

    def fetch(obj: ScriptObject) -> str | Rejected:
        try:
            text = directive_text(source.read_header(obj, settings.max_header_bytes))
        except Exception as exc:  # a read error rejects this script only
            return Rejected(
                path=obj.path,
                uri=obj.uri,
                reason=f"cannot read the script header: {exc}",
                fix="check that the object still exists and the Airflow identity can read it",
            )
        cache.put(obj.md5, text)
        return text

    # Cached headers need no I/O; only the misses go to the thread pool (its overhead is not free).
    headers: dict[str, str | Rejected] = {}
    misses = []
    for obj in selected:
        cached = "" if cache.plans.get(obj.md5) is not None else cache.get(obj.md5)
        if cached is None:
            misses.append(obj)
        else:
            headers[obj.path] = cached
    if misses:
        with ThreadPoolExecutor(max_workers=min(settings.discovery_concurrency, len(misses))) as pool:
            headers.update(zip((o.path for o in misses), pool.map(fetch, misses), strict=True))
    for obj in selected:
        header = headers[obj.path]
        if isinstance(header, Rejected):
            result.rejected.append(header)
            continue
        outcome = _plan(obj, header, settings, cache)
        if isinstance(outcome, Rejected):
            result.rejected.append(outcome)
        else:
            result.specs.append(outcome)
    if len(result.specs) > settings.max_scripts:
        raise TooManyScriptsError(
            f"{len(result.specs)} scripts found under {settings.source}, "
            f"above max_scripts={settings.max_scripts}; "
            "nothing was launched (fix: raise max_scripts and SCRIPT_RUNNER_SHARDS, or split the folder)"
        )
    result.cache_hits = cache.hits
    cache.save({o.md5 for o in selected if o.md5})
    for rej in result.rejected:
        log.warning("rejected %s: %s (fix: %s)", rej.path, rej.reason, rej.fix)
    return result


_OBJECT_FIELDS = {"path", "uri", "generation", "md5", "size"}


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


def _plan(
    obj: ScriptObject, header: str, settings: RunnerSettings, cache: HeaderCache
) -> dict[str, Any] | Rejected:
    """The script's wire-form spec, or why it is rejected.

    A plan cached for the same content under the same settings is reused as is (no parsing, no model):
    at 10 000 scripts that is most of a warm discovery's time.
    """
    cached = cache.get_plan(obj.md5)
    if cached is not None:
        if "rejected" in cached:
            return Rejected(path=obj.path, uri=obj.uri, **cached["rejected"])
        return {**_object_wire(obj), **cached}
    try:
        spec = resolve(obj, parse_directives(obj.path, header), settings)
    except DirectiveError as err:
        cache.put_plan(obj.md5, {"rejected": {"reason": err.message, "line": err.line, "fix": err.fix}})
        return Rejected.from_error(obj, err)
    wire = spec_to_xcom(spec)
    cache.put_plan(obj.md5, {k: v for k, v in wire.items() if k not in _OBJECT_FIELDS})
    return wire


def shard(
    specs: list[dict[str, Any]], *, shards: int, max_map_length: int = c.DEFAULT_MAX_MAP_LENGTH
) -> list[list[dict[str, Any]]]:
    """Split specs into ``shards`` lists for the mapped run tasks, each at most ``max_map_length`` long.

    Scripts keep their sorted order and land in contiguous blocks, so a script stays in the same shard as
    long as the folder does not change much.

    :raises TooManyScriptsError: when the shards cannot hold them all (before anything is launched).
    """
    capacity = shards * max_map_length
    if len(specs) > capacity:
        raise TooManyScriptsError(
            f"{len(specs)} scripts do not fit in {shards} shard(s) of {max_map_length} (Airflow's "
            f"max_map_length); nothing was launched (fix: set SCRIPT_RUNNER_SHARDS to at least "
            f"{-(-len(specs) // max_map_length)} or raise [core] max_map_length)"
        )
    ordered = sorted(specs, key=lambda s: str(s["path"]))
    size = -(-len(ordered) // shards) if ordered else 0
    return [ordered[i * size : (i + 1) * size] for i in range(shards)]


class _Selector:
    """include/exclude globs compiled once (fnmatch per path and pattern is the slow part at 10 000s).

    A path is selected when it matches an include glob, is not hidden, and no exclude glob matches it:
    ``dir/`` excludes a folder; other globs match the whole path or the file name.
    """

    def __init__(self, include: Iterable[str], exclude: Iterable[str]) -> None:
        self._include = _either(fnmatch.translate(p) for p in include)
        dirs = [p for p in exclude if p.endswith("/")]
        files = [p for p in exclude if not p.endswith("/")]
        self._dir_prefixes = tuple(dirs)
        self._exclude = _either(
            [*(fnmatch.translate(p + "*") for p in dirs), *(fnmatch.translate(p) for p in files)]
        )
        self._exclude_name = _either(fnmatch.translate(p) for p in files)

    def __call__(self, path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        if name.startswith(".") or path.endswith("/") or self._include is None:
            return False
        if not self._include.match(path):
            return False
        if self._dir_prefixes and path.startswith(self._dir_prefixes):
            return False
        if self._exclude is not None and self._exclude.match(path):
            return False
        return not (self._exclude_name is not None and self._exclude_name.match(name))


def _either(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = list(patterns)
    return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None


def _ignore_patterns(source: _Source) -> list[str]:
    text = source.read_file(c.RUNNERIGNORE)
    if not text:
        return []
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


class _Source:
    def list(self) -> list[ScriptObject]:
        raise NotImplementedError

    def read_header(self, obj: ScriptObject, limit: int) -> str:
        raise NotImplementedError

    def read_file(self, relative: str) -> str | None:
        raise NotImplementedError


class _GcsSource(_Source):
    def __init__(self, settings: RunnerSettings, client: Client | None) -> None:
        self.bucket_name = settings.source_bucket
        self.prefix = settings.source_prefix
        self._client = client
        self._factory: Callable[[], Client] = _default_client

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def list(self) -> list[ScriptObject]:
        try:
            blobs = self.client.list_blobs(self.bucket_name, prefix=self.prefix, fields=_LIST_FIELDS)
            out = [
                ScriptObject(
                    path=b.name[len(self.prefix) :],
                    uri=f"gs://{self.bucket_name}/{b.name}",
                    generation=str(b.generation or ""),
                    md5=b.md5_hash or "",
                    size=int(b.size or 0),
                )
                for b in blobs
            ]
        except Exception as exc:
            raise DiscoveryError(
                f"cannot list gs://{self.bucket_name}/{self.prefix}: {exc} (fix: check the bucket name in "
                "the source setting and that the Airflow identity has storage.objects.list on it)"
            ) from exc
        return sorted(out, key=lambda o: o.path)

    def read_header(self, obj: ScriptObject, limit: int) -> str:
        blob = self.client.bucket(self.bucket_name).blob(
            self.prefix + obj.path, generation=int(obj.generation) if obj.generation else None
        )
        data: bytes = blob.download_as_bytes(start=0, end=limit - 1, checksum=None)
        return data.decode("utf-8", errors="replace")

    def read_file(self, relative: str) -> str | None:
        blob = self.client.bucket(self.bucket_name).blob(self.prefix + relative)
        try:
            text: str = blob.download_as_text()
        except Exception:  # absent (404) is the normal case
            return None
        return text


class _FileSource(_Source):
    def __init__(self, settings: RunnerSettings) -> None:
        self.root = Path(settings.source_prefix)

    def list(self) -> list[ScriptObject]:
        if not self.root.is_dir():
            raise DiscoveryError(f"source folder {self.root} does not exist (fix: check the file:// source)")
        out = []
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            stat = path.stat()
            out.append(
                ScriptObject(
                    path=path.relative_to(self.root).as_posix(),
                    uri=path.resolve().as_uri(),
                    generation=str(stat.st_mtime_ns),
                    size=stat.st_size,
                    md5=base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode(),
                )
            )
        return out

    def read_header(self, obj: ScriptObject, limit: int) -> str:
        with (self.root / obj.path).open("rb") as handle:
            return handle.read(limit).decode("utf-8", errors="replace")

    def read_file(self, relative: str) -> str | None:
        path = self.root / relative
        return path.read_text() if path.is_file() else None


def _make_source(settings: RunnerSettings, client: Client | None) -> _Source:
    if settings.source_scheme == "file":
        return _FileSource(settings)
    return _GcsSource(settings, client)


def _default_client() -> Client:
    from google.cloud import storage

    return storage.Client()
