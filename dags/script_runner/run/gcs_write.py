"""Small GCS objects over plain HTTP, without the storage client: create-only writes, writes and reads.

A run task writes one ledger record after its pod, and reads and writes its script's done-marker before
and after it. Importing ``google.cloud.storage`` for them (or the Google provider's hooks, which import it)
costs a task process ~140 modules, gRPC and protobuf included, and tens of ms of CPU; ``google.auth`` and
``requests`` are already loaded with the KubernetesPodOperator. So a record is one ``POST`` to the JSON
API's multipart upload (``ifGenerationMatch=0`` when create-only), and a read one ``GET`` of the object's
media (404: there is none), authorized with the connection's credentials.

Only connections whose credentials need nothing of the provider are handled here: anonymous (the
emulator) and Application Default Credentials (Composer's ``google_cloud_default``: the environment's
service account). A connection with a key, a secret, a credential config or an impersonation chain
gives :func:`writer_for_connection` ``None``, and the caller writes through the storage client as before.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)
DEFAULT_ENDPOINT = "https://storage.googleapis.com"
DEFAULT_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)  # the Google provider's default
# Connection extras that change nothing about how credentials are found (anything else: the provider).
PLAIN_FIELDS = frozenset({"project", "is_anonymous", "scope", "num_retries"})
_EXTRA_PREFIX = "extra__google_cloud_platform__"
TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
TIMEOUT = (10, 60)  # connect, read (seconds)


class GcsWriteError(Exception):
    """A write or read the service refused (its status and message), or that kept failing."""


class _Transient(GcsWriteError):
    """A transient answer or a lost connection: tried again."""


def endpoint() -> str:
    """The JSON API's base URL: ``STORAGE_EMULATOR_HOST`` when set (as the storage client reads it)."""
    host = os.environ.get("STORAGE_EMULATOR_HOST", "").strip()
    if not host:
        return DEFAULT_ENDPOINT
    return (host if "://" in host else f"http://{host}").rstrip("/")


def plain_extras(extra: dict[str, Any]) -> dict[str, Any] | None:
    """A connection's extras without the old ``extra__google_cloud_platform__`` prefix, or None.

    None when a field needs the provider's credential logic (a key, a secret, impersonation, ...).

    :param extra: the connection's ``extra_dejson``.
    """
    fields = {k.removeprefix(_EXTRA_PREFIX): v for k, v in extra.items() if v not in (None, "", [], {})}
    if set(fields) - PLAIN_FIELDS:
        return None
    return fields


def multipart(name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    """A ``multipart/related`` upload body (the object's metadata, then its content) and its boundary.

    :param name: the object's name.
    :param data: its content.
    :param content_type: its content type.
    """
    boundary = "sr-" + secrets.token_hex(16)
    meta = json.dumps({"name": name, "contentType": content_type})
    head = (
        f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n"
        f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n"
    )
    return head.encode() + data + f"\r\n--{boundary}--\r\n".encode(), boundary


class GcsWriter:
    """Writes (create-only or not) and reads of small objects through one ``requests`` session.

    :param credentials: ``google.auth`` credentials, or None for anonymous requests (an emulator).
    :param base_url: the JSON API's base URL (default: :func:`endpoint`).
    """

    def __init__(self, credentials: Any | None, *, base_url: str | None = None) -> None:
        self.credentials = credentials
        self.base_url = base_url or endpoint()
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        """The HTTP session (authorized when there are credentials; refreshes and retries a 401)."""
        if self._session is None:
            import requests
            from google.auth.transport.requests import AuthorizedSession

            self._session = (
                requests.Session() if self.credentials is None else AuthorizedSession(self.credentials)  # type: ignore[no-untyped-call]
            )
        return self._session

    def create(self, bucket: str, name: str, data: bytes, *, content_type: str = "application/json") -> bool:
        """Write ``name`` only if it does not exist: True when written, False when the name is taken.

        :param bucket: the bucket.
        :param name: the object's name.
        :param data: its content.
        :param content_type: its content type.
        :raises GcsWriteError: the service refused it (e.g. 403), or it kept failing (after retries).
        """
        return self._upload(bucket, name, data, content_type, create_only=True)

    def write(self, bucket: str, name: str, data: bytes, *, content_type: str = "application/json") -> None:
        """Write ``name``, replacing what is there (no precondition).

        :param bucket: the bucket.
        :param name: the object's name.
        :param data: its content.
        :param content_type: its content type.
        :raises GcsWriteError: the service refused it (e.g. 403), or it kept failing (after retries).
        """
        self._upload(bucket, name, data, content_type, create_only=False)

    @retry(
        retry=retry_if_exception_type(_Transient),
        stop=stop_after_attempt(5),
        wait=wait_random_exponential(multiplier=0.5, max=8),
        reraise=True,
    )
    def read(self, bucket: str, name: str) -> bytes | None:
        """The content of ``name``, or None when there is no such object (a 404).

        :param bucket: the bucket.
        :param name: the object's name.
        :raises GcsWriteError: the service refused it (e.g. 403), or it kept failing (after retries).
        """
        import requests

        url = f"{self.base_url}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        try:
            answer = self.session.get(url, params={"alt": "media"}, timeout=TIMEOUT)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Transient(f"gs://{bucket}/{name}: {exc}") from exc
        if answer.status_code == 200:
            return answer.content
        if answer.status_code == 404:
            return None
        raise _refused(bucket, name, answer)

    @retry(
        retry=retry_if_exception_type(_Transient),
        stop=stop_after_attempt(5),
        wait=wait_random_exponential(multiplier=0.5, max=8),
        reraise=True,
    )
    def _upload(self, bucket: str, name: str, data: bytes, content_type: str, *, create_only: bool) -> bool:
        import requests

        url = f"{self.base_url}/upload/storage/v1/b/{quote(bucket, safe='')}/o"
        body, boundary = multipart(name, data, content_type)
        # Multipart, as the storage client sends small objects: the emulator honours the precondition there.
        params = {"uploadType": "multipart"}
        if create_only:
            params["ifGenerationMatch"] = "0"
        headers = {"Content-Type": f'multipart/related; boundary="{boundary}"'}
        try:
            answer = self.session.post(url, params=params, data=body, headers=headers, timeout=TIMEOUT)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Transient(f"gs://{bucket}/{name}: {exc}") from exc
        if answer.status_code in (200, 201):
            return True
        if answer.status_code == 412 and create_only:
            return False
        raise _refused(bucket, name, answer)


def _refused(bucket: str, name: str, answer: requests.Response) -> GcsWriteError:
    """The error for an answer that is neither a success nor an expected miss (transient ones retried)."""
    message = f"gs://{bucket}/{name}: HTTP {answer.status_code} {answer.text[:300]}"
    return _Transient(message) if answer.status_code in TRANSIENT else GcsWriteError(message)


def writer_for_connection(conn_id: str) -> GcsWriter | None:
    """A writer with the credentials of Airflow connection ``conn_id``, or None to use the storage client.

    None when the connection needs the Google provider's credential logic (see the module docstring) or
    cannot be read here; the provider then reports any problem with it as it always did.

    :param conn_id: the Google Cloud connection's id.
    """
    try:
        extra = _connection_extra(conn_id)
    except Exception:  # a missing connection: the provider's path says what is wrong
        log.debug("connection %s not read here; writing through the storage client", conn_id, exc_info=True)
        return None
    fields = plain_extras(extra)
    if fields is None:
        return None
    if str(fields.get("is_anonymous", "")).lower() in ("true", "1"):
        return GcsWriter(None)
    import google.auth

    raw_scopes = fields.get("scope")
    scopes = [s.strip() for s in str(raw_scopes).split(",") if s.strip()] if raw_scopes else DEFAULT_SCOPES
    credentials, _ = google.auth.default(scopes=scopes)
    return GcsWriter(credentials)


def _connection_extra(conn_id: str) -> dict[str, Any]:
    try:  # Airflow 3.x
        from airflow.sdk import BaseHook
    except ImportError:  # Airflow 2.x
        from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]
    extra = BaseHook.get_connection(conn_id).extra_dejson
    return dict(extra) if isinstance(extra, dict) else {}
