"""Where scripts come from: a gs:// prefix (listed through the GCS API) or a file:// folder (Composer's
mounted data folder). A source lists objects and reads the first bytes of one; it decides nothing.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from script_runner.discover.spec import ScriptObject
from script_runner.exceptions import DiscoveryError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from google.cloud.storage import Client

    from script_runner.config.settings import RunnerSettings

log = logging.getLogger(__name__)
# Per object read: its first bytes, or why it could not be read (a "list" method shadows the builtin below).
HeaderReads = list[bytes | Exception]
_LIST_FIELDS = "items(name,generation,md5Hash,size),nextPageToken"


class Source(ABC):
    """A place that holds scripts."""

    @abstractmethod
    def list(self) -> list[ScriptObject]:
        """Every object under the source, sorted by path."""

    @abstractmethod
    def read_header(self, obj: ScriptObject, limit: int) -> bytes:
        """The first ``limit`` bytes of the pinned version of ``obj``."""

    @abstractmethod
    def read_file(self, relative: str) -> str | None:
        """A small file at the source's root (``.runnerignore``), None when absent."""

    def read_headers(self, objs: Sequence[ScriptObject], limit: int, concurrency: int) -> HeaderReads:
        """The first ``limit`` bytes of each object, in order; a failed read is its exception.

        :param objs: the objects to read.
        :param limit: bytes from the start of each.
        :param concurrency: reads at once.
        """

        def one(obj: ScriptObject) -> bytes | Exception:
            try:
                return self.read_header(obj, limit)
            except Exception as exc:  # one unreadable object rejects that script only
                return exc

        if not objs:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(objs)))) as pool:
            return list(pool.map(one, objs))


class GcsSource(Source):
    """Objects under ``gs://bucket/prefix/``."""

    def __init__(self, settings: RunnerSettings, client: Client | None) -> None:
        self.bucket_name = settings.source_bucket
        self.prefix = settings.source_prefix
        self._client = client
        self._factory: Callable[[], Client] = default_client

    @property
    def client(self) -> Client:
        """The storage client (made from defaults on first use when none was given)."""
        if self._client is None:
            self._client = self._factory()
        return self._client

    def list(self) -> list[ScriptObject]:
        """List with only the fields discovery needs (smaller pages).

        :raises DiscoveryError: when the bucket cannot be listed.
        """
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
                f"cannot list gs://{self.bucket_name}/{self.prefix}: {exc} (fix: {_list_fix(exc)})"
            ) from exc
        return sorted(out, key=lambda o: o.path)

    def read_header(self, obj: ScriptObject, limit: int) -> bytes:
        """A ranged read of the pinned generation (never the whole object)."""
        blob = self.client.bucket(self.bucket_name).blob(
            self.prefix + obj.path, generation=int(obj.generation) if obj.generation else None
        )
        data: bytes = blob.download_as_bytes(start=0, end=limit - 1, checksum=None)
        return data

    def read_headers(self, objs: Sequence[ScriptObject], limit: int, concurrency: int) -> HeaderReads:
        """All ranged reads on one pooled async HTTP session (:mod:`script_runner.discover.ranged_reads`)
        with the client's credentials; through the client, a thread per read, when that session cannot be set
        up.

        :param objs: the objects to read (their pinned generations).
        :param limit: bytes from the start of each.
        :param concurrency: reads in flight at once.
        """
        from script_runner.discover import ranged_reads

        try:
            headers = ranged_reads.auth_headers(self.client)
            endpoint = str(self.client.api_endpoint)
            import aiohttp  # noqa: F401  (present with the google provider; checked before the plan)
        except Exception:
            log.warning("pooled header reads unavailable; reading through the storage client", exc_info=True)
            return super().read_headers(objs, limit, concurrency)
        urls = [
            ranged_reads.media_url(endpoint, self.bucket_name, self.prefix + o.path, o.generation)
            for o in objs
        ]
        return ranged_reads.read_ranges(urls, limit=limit, concurrency=concurrency, headers=headers)

    def read_file(self, relative: str) -> str | None:
        """Read a small object; None when it is absent."""
        blob = self.client.bucket(self.bucket_name).blob(self.prefix + relative)
        try:
            text: str = blob.download_as_text()
        except Exception:  # absent (404) is the normal case
            return None
        return text


class FileSource(Source):
    """Files under a local folder (``file:///home/airflow/gcs/data/`` on Composer)."""

    def __init__(self, settings: RunnerSettings) -> None:
        self.root = Path(settings.source_prefix)

    def list(self) -> list[ScriptObject]:
        """Every file, with its md5 and mtime as the generation.

        :raises DiscoveryError: when the folder does not exist.
        """
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

    def read_header(self, obj: ScriptObject, limit: int) -> bytes:
        """The first bytes of the file."""
        with (self.root / obj.path).open("rb") as handle:
            return handle.read(limit)

    def read_file(self, relative: str) -> str | None:
        """Read a small file; None when it is absent."""
        path = self.root / relative
        return path.read_text() if path.is_file() else None


def make_source(settings: RunnerSettings, client: Client | None) -> Source:
    """The source the settings point at.

    :param settings: the runner settings (``source``).
    :param client: a storage client for gs:// sources (made from defaults when None).
    """
    if settings.source_scheme == "file":
        return FileSource(settings)
    return GcsSource(settings, client)


def _list_fix(exc: Exception) -> str:
    """The fix for a listing that failed: credentials missing here (a laptop), or the identity's access."""
    from google.auth.exceptions import DefaultCredentialsError

    if isinstance(exc, DefaultCredentialsError):
        return (
            "no Google credentials here: on your machine run `gcloud auth application-default login` "
            "(or set GOOGLE_APPLICATION_CREDENTIALS); on Airflow, the environment's service account is used"
        )
    return (
        "check the bucket name in the source setting and that the identity listing it (yours for "
        "`script-runner plan`, the Airflow identity in a run) has storage.objects.list on it"
    )


def default_client() -> Client:
    """A storage client from the environment's default credentials."""
    from google.cloud import storage

    return storage.Client()
