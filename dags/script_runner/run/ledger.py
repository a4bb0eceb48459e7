"""Attempt ledger: one small JSON object per attempt record, under the (run, script) it belongs to.

The report reads it (Airflow 3 tasks cannot query the metadata DB), and the operator reads it to count
earlier evictions and OOM kills of the same run. Each record is its own object,
``<root>/ledger/<run id>/<script path>/<try number>-<seq>.json``, written create-only
(``ifGenerationMatch=0``): an attempt's outcome costs one write, no read-modify-write, and two writers of
the same try (a cancel racing an end) take the next ``seq`` instead of overwriting each other. Names sort
in the order of the attempts (zero-padded try number, then seq). Objects of the older layout (one list per
script, ``<script path>.json``) are still read.
"""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from google.cloud.storage import Client

    from script_runner.run.gcs_write import GcsWriter

log = logging.getLogger(__name__)
# Actions after which a script's task ends: a task in a final state should have one of these last.
FINAL_ACTIONS = frozenset({"done", "skip", "fail", "cancel"})
# How long the report waits for the records of tasks that Airflow already shows as ended.
SETTLE_SECONDS = 30.0
# Create-only names tried per record before giving up (each taken name means a concurrent record).
MAX_SEQ = 100
# Threads for the report's reads of every record of a run (one GET each): as many as the storage client's
# session keeps connections to a host (requests' default pool of 10); more threads open connections that
# the pool then discards ("Connection pool is full"), a new connection for each read past ten.
READ_THREADS = 10
_RECORD = re.compile(r"^(?P<path>.+)/(?P<try>\d{5})-(?P<seq>\d{3})\.json$")


class Ledger:
    """Read and add attempt records under ``gs://<bucket>/<root>/ledger/<run id>/<script>/``.

    :param client: a storage client (reads, and writes when there is no ``writer``); or give ``connect``,
        called for one the first time one is needed (a run task that only writes never imports it).
    :param writer: writes records over plain HTTP (:mod:`script_runner.run.gcs_write`) instead of the client.
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        bucket: str,
        root: str,
        connect: Callable[[], Client] | None = None,
        writer: GcsWriter | None = None,
    ) -> None:
        if client is None and connect is None:
            raise ValueError("Ledger needs a storage client or a way to connect one")
        self._client = client
        self._connect = connect
        self.writer = writer
        self.bucket = bucket
        self.root = root.strip("/")

    @property
    def client(self) -> Client:
        """The storage client (connected on first use when built with ``connect``)."""
        if self._client is None:
            assert self._connect is not None
            self._client = self._connect()
        return self._client

    def object_name(self, run_id: str, path: str, *, try_number: int = 0, seq: int = 0) -> str:
        """The object of one attempt record of a script in a run.

        :param run_id: the DAG run.
        :param path: the script's path in the source.
        :param try_number: Airflow's try number of the attempt (0 when unknown).
        :param seq: the record's place among the records of the same try.
        """
        return f"{self._run_prefix(run_id)}{path}/{try_number:05d}-{seq:03d}.json"

    def read(self, run_id: str, path: str) -> list[dict[str, Any]]:
        """Attempts recorded so far for one script, oldest first (empty when none).

        :param run_id: the DAG run.
        :param path: the script's path in the source.
        """
        prefix = self._run_prefix(run_id)
        blobs = self.client.list_blobs(self.bucket, prefix=prefix + path)
        wanted = [b.name for b in blobs if _script_of(b.name[len(prefix) :]) == path]
        return self._records(prefix, wanted).get(path, [])

    def append(self, run_id: str, path: str, record: dict[str, Any]) -> None:
        """Add one attempt record: one create-only write (the next ``seq`` when the name is taken).

        :param run_id: the DAG run.
        :param path: the script's path in the source.
        :param record: the attempt's record (its ``try_number`` names the object).
        """
        try_number = record.get("try_number")
        number = try_number if isinstance(try_number, int) and try_number >= 0 else 0
        data = json.dumps(record)
        names = (self.object_name(run_id, path, try_number=number, seq=seq) for seq in range(MAX_SEQ))
        create = self._create_plain if self.writer is not None else self._create_with_client
        for name in names:
            if create(name, data):
                return
        raise RuntimeError(f"{MAX_SEQ} ledger records of {path} try {number} in {run_id}: none added")

    def _create_plain(self, name: str, data: str) -> bool:
        assert self.writer is not None
        return self.writer.create(self.bucket, name, data.encode())

    def _create_with_client(self, name: str, data: str) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        blob = self.client.bucket(self.bucket).blob(name)
        try:
            blob.upload_from_string(data, content_type="application/json", if_generation_match=0)
        except PreconditionFailed:
            return False
        return True

    def read_all(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every script's attempts in a run, by script path (records read side by side).

        :param run_id: the DAG run.
        """
        prefix = self._run_prefix(run_id)
        names = [
            b.name for b in self.client.list_blobs(self.bucket, prefix=prefix) if b.name.endswith(".json")
        ]
        return self._records(prefix, names)

    def read_settled(
        self, run_id: str, states: dict[str, str | None], *, timeout: float = SETTLE_SECONDS
    ) -> dict[str, list[dict[str, Any]]]:
        """Every script's attempts, once the tasks Airflow shows as ended have recorded how.

        A user who marks a running task failed or success ends it in Airflow's database at once, and the
        report runs right away; the task process learns of it at its next heartbeat and records the
        attempt as cancelled a few seconds later. So while some task is ``failed`` or ``success`` and its
        last record is not a final one, read again (up to ``timeout``); then report with what is there.

        :param states: final Airflow state per script path (empty when Airflow does not tell).
        """

        def lagging(attempts: dict[str, list[dict[str, Any]]]) -> list[str]:
            return [
                path
                for path, state in states.items()
                if state in ("failed", "success")
                and (attempts.get(path) or [{}])[-1].get("action") not in FINAL_ACTIONS
            ]

        def waiting(state: RetryCallState) -> None:
            found = state.outcome.result() if state.outcome else {}
            log.info("[runner] waiting for the records of %s", ", ".join(lagging(found)[:5]))

        try:
            attempts: dict[str, list[dict[str, Any]]] = Retrying(
                retry=retry_if_result(lambda found: bool(lagging(found))),
                stop=stop_after_delay(timeout),
                wait=wait_fixed(2),
                before_sleep=waiting,
            )(self.read_all, run_id)
        except RetryError as exc:
            attempts = exc.last_attempt.result()
            log.warning("[runner] no final record for %s: reported from Airflow's state", lagging(attempts))
        return attempts

    def _run_prefix(self, run_id: str) -> str:
        return f"{self.root}/ledger/{run_id}/"

    def _records(self, prefix: str, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Records per script from the objects ``names`` (both layouts), oldest first."""
        from google.api_core.exceptions import NotFound

        bucket = self.client.bucket(self.bucket)

        def download(name: str) -> Any:
            try:
                return json.loads(bucket.blob(name).download_as_bytes())
            except NotFound:  # deleted between the listing and the read
                return None

        ordered = sorted(names, key=lambda n: _order(n[len(prefix) :]))
        if len(ordered) > 1:
            with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(ordered))) as pool:
                loaded = list(pool.map(download, ordered))
        else:
            loaded = [download(n) for n in ordered]
        out: dict[str, list[dict[str, Any]]] = {}
        for name, data in zip(ordered, loaded, strict=True):
            relative = name[len(prefix) :]
            records = out.setdefault(_script_of(relative), [])
            if isinstance(data, list):  # older layout: the whole list in one object
                records.extend(r for r in data if isinstance(r, dict))
            elif isinstance(data, dict):
                records.append(data)
        return out


def ledger_for_connection(conn_id: str, *, bucket: str, root: str) -> Ledger:
    """The ledger a task uses: records written over plain HTTP with the connection's credentials when
    they need nothing of the Google provider, the storage client connected only when first needed.

    :param conn_id: the Google Cloud connection.
    :param bucket: the state bucket.
    :param root: the state root in it.
    """
    from script_runner.run.gcs_write import writer_for_connection

    def connect() -> Client:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        return GCSHook(gcp_conn_id=conn_id).get_conn()

    return Ledger(bucket=bucket, root=root, connect=connect, writer=writer_for_connection(conn_id))


def _script_of(relative: str) -> str:
    """The script path an object under a run's prefix belongs to (either layout)."""
    match = _RECORD.match(relative)
    if match:
        return match["path"]
    return relative[: -len(".json")] if relative.endswith(".json") else relative


def _order(relative: str) -> tuple[str, int, int]:
    """Sort key: by script, an older-layout list first, then try number and seq."""
    match = _RECORD.match(relative)
    if match:
        return (match["path"], int(match["try"]), int(match["seq"]))
    return (_script_of(relative), -1, 0)


def since_last_clear(history: list[dict[str, Any]], max_tries: int | None) -> list[dict[str, Any]]:
    """The attempts recorded since a user last cleared the task (all of them when it never was).

    Airflow raises a task instance's ``max_tries`` (to its try number plus its retries) when a user clears
    it, and never otherwise: a try the scheduler lost, a reschedule or a retry keeps it. Each record carries
    the ``max_tries`` of its attempt, so records with a lower one belong to before the clear. A clear thus
    starts the script afresh in its run (its retries, its final verdict), while a lost try does not.

    :param history: the run's attempts from the ledger, oldest first.
    :param max_tries: this attempt's ``max_tries`` (None when Airflow does not say: nothing is dropped).
    """
    if max_tries is None:
        return history
    start = 0
    for index, record in enumerate(history):
        recorded = record.get("max_tries")
        if isinstance(recorded, int) and recorded < max_tries:
            start = index + 1
    return history[start:]
