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
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_fixed,
    wait_random_exponential,
)

if TYPE_CHECKING:
    from google.cloud.storage import Client

log = logging.getLogger(__name__)
# Actions after which a script's task ends: a task in a final state should have one of these last.
FINAL_ACTIONS = frozenset({"done", "skip", "fail", "cancel"})
# How long the report waits for the records of tasks that Airflow already shows as ended.
SETTLE_SECONDS = 30.0


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

    def _read(self, name: str) -> tuple[list[dict[str, Any]], int]:
        blob = self.client.bucket(self.bucket).blob(name)
        try:
            data = blob.download_as_bytes()
        except NotFound:
            return [], 0
        records = json.loads(data)
        return (records if isinstance(records, list) else []), int(blob.generation or 0)


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
