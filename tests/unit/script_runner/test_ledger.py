"""The attempt ledger against the GCS emulator: the report waits for a cancelled task's own record."""

from __future__ import annotations

import threading
import time
from typing import Any

from script_runner.ledger import Ledger

RUN = "manual__2026-11-30T00:00:00+00:00"
CANCELLED = {"status": "cancelled", "action": "cancel", "try_number": 1}


def test_ledger_read_settled_waits_for_a_task_marked_failed_to_record_its_cancel(
    gcs_client: Any, make_bucket: Any
) -> None:
    # A user marked the task failed: Airflow shows it failed at once, the task records "cancel" seconds later.
    ledger = Ledger(gcs_client, bucket=make_bucket({}).name, root="script-runner")
    late = threading.Timer(1.5, ledger.append, args=(RUN, "long.sh", CANCELLED))
    late.start()
    try:
        attempts = ledger.read_settled(RUN, {"long.sh": "failed"}, timeout=20)
    finally:
        late.join()
    assert attempts["long.sh"] == [CANCELLED]


def test_ledger_read_settled_does_not_wait_when_every_ended_task_has_its_final_record(
    gcs_client: Any, make_bucket: Any
) -> None:
    ledger = Ledger(gcs_client, bucket=make_bucket({}).name, root="script-runner")
    ledger.append(RUN, "ok.sh", {"status": "success", "action": "done"})
    ledger.append(RUN, "flaky.sh", {"status": "failed", "action": "retry"})  # still running its retry
    start = time.monotonic()
    attempts = ledger.read_settled(RUN, {"ok.sh": "success", "flaky.sh": "up_for_retry"}, timeout=20)
    assert time.monotonic() - start < 1.5
    assert set(attempts) == {"ok.sh", "flaky.sh"}


def test_ledger_read_settled_gives_up_after_the_timeout_with_what_is_there(
    gcs_client: Any, make_bucket: Any
) -> None:
    # A worker lost with its task: no record ever comes; the report goes on with Airflow's state.
    ledger = Ledger(gcs_client, bucket=make_bucket({}).name, root="script-runner")
    start = time.monotonic()
    assert ledger.read_settled(RUN, {"gone.sh": "failed"}, timeout=3) == {}
    assert 2.5 < time.monotonic() - start < 8
