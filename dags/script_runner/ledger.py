"""Attempt ledger: one small JSON object per (run, script) in GCS listing every attempt.

The report reads it (Airflow 3 tasks cannot query the metadata DB), and the operator reads it to count
earlier evictions and OOM kills of the same run. Writes use generation preconditions, so two writers never
lose each other's record.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from google.api_core.exceptions import NotFound, PreconditionFailed
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

if TYPE_CHECKING:
    from google.cloud.storage import Client

log = logging.getLogger(__name__)


class Ledger:
    """Read and append attempt records under ``gs://<bucket>/<root>/ledger/<run id>/<script>.json``."""

    def __init__(self, client: Client, *, bucket: str, root: str) -> None:
        self.client = client
        self.bucket = bucket
        self.root = root.strip("/")

    def object_name(self, run_id: str, path: str) -> str:
        """Object holding a script's attempts in a run."""
        return f"{self.root}/ledger/{run_id}/{path}.json"

    def read(self, run_id: str, path: str) -> list[dict[str, Any]]:
        """Attempts recorded so far (empty when none)."""
        records, _ = self._read(self.object_name(run_id, path))
        return records

    @retry(
        retry=retry_if_exception_type(PreconditionFailed),
        stop=stop_after_attempt(8),
        wait=wait_random_exponential(multiplier=0.05, max=1),
        reraise=True,
    )
    def append(self, run_id: str, path: str, record: dict[str, Any]) -> None:
        """Add one attempt record; retried on a concurrent write."""
        name = self.object_name(run_id, path)
        records, generation = self._read(name)
        records.append(record)
        blob = self.client.bucket(self.bucket).blob(name)
        blob.upload_from_string(
            json.dumps(records), content_type="application/json", if_generation_match=generation
        )

    def read_all(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every script's attempts in a run, by script path."""
        prefix = f"{self.root}/ledger/{run_id}/"
        out: dict[str, list[dict[str, Any]]] = {}
        for blob in self.client.list_blobs(self.bucket, prefix=prefix):
            if blob.name.endswith(".json"):
                out[blob.name[len(prefix) : -len(".json")]] = json.loads(blob.download_as_bytes())
        return out

    def _read(self, name: str) -> tuple[list[dict[str, Any]], int]:
        blob = self.client.bucket(self.bucket).blob(name)
        try:
            data = blob.download_as_bytes()
        except NotFound:
            return [], 0
        records = json.loads(data)
        return (records if isinstance(records, list) else []), int(blob.generation or 0)
