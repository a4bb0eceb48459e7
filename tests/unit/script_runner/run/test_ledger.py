"""The attempt ledger against the GCS emulator: the report waits for a cancelled task's own record."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from local.gcs_counting import CountingClient
from script_runner.run.ledger import Ledger

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


def test_ledger_append_writes_one_object_and_reads_nothing(gcs_client: Any, make_bucket: Any) -> None:
    counting = CountingClient(gcs_client)
    ledger = Ledger(counting, bucket=make_bucket({}).name, root="sr")  # type: ignore[arg-type]
    ledger.append(RUN, "etl/load.sh", {"status": "success", "action": "done", "try_number": 1})
    assert (counting.reads, counting.writes) == (0, 1)
    names = [b.name for b in gcs_client.list_blobs(ledger.bucket, prefix="sr/ledger/")]
    assert names == [f"sr/ledger/{RUN}/etl/load.sh/00001-000.json"]


def test_ledger_keeps_both_records_of_one_try_written_side_by_side(gcs_client: Any, make_bucket: Any) -> None:
    # A cancel and an end of the same try racing: create-only writes, the second takes the next seq.
    ledger = Ledger(gcs_client, bucket=make_bucket({}).name, root="sr")
    records = [{"status": s, "action": "cancel", "try_number": 3, "i": i} for i, s in enumerate("ab" * 4)]
    threads = [threading.Thread(target=ledger.append, args=(RUN, "x.sh", r)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["i"] for r in ledger.read(RUN, "x.sh")) == list(range(8))


def test_ledger_reads_attempts_in_try_order_past_nine_and_only_the_scripts_own(
    gcs_client: Any, make_bucket: Any
) -> None:
    ledger = Ledger(gcs_client, bucket=make_bucket({}).name, root="sr")
    for try_number in (10, 2, 1):
        ledger.append(RUN, "a.sh", {"status": "failed", "try_number": try_number})
    ledger.append(RUN, "a.sh", {"status": "evicted", "try_number": 2})  # a reschedule keeps the try
    ledger.append(RUN, "a.sh.bak", {"status": "success", "try_number": 1})  # a sibling whose name extends it
    assert [(r["try_number"], r["status"]) for r in ledger.read(RUN, "a.sh")] == [
        (1, "failed"),
        (2, "failed"),
        (2, "evicted"),
        (10, "failed"),
    ]
    assert set(ledger.read_all(RUN)) == {"a.sh", "a.sh.bak"}


def test_ledger_still_reads_a_run_recorded_in_the_older_one_list_layout(
    gcs_client: Any, make_bucket: Any
) -> None:
    # A run in flight while the runner is upgraded: its earlier attempts are in <script>.json.
    bucket = make_bucket({})
    old = [{"status": "evicted", "try_number": 1}]
    bucket.blob(f"sr/ledger/{RUN}/etl/a.sh.json").upload_from_string(json.dumps(old))
    ledger = Ledger(gcs_client, bucket=bucket.name, root="sr")
    ledger.append(RUN, "etl/a.sh", {"status": "success", "try_number": 1})
    assert [r["status"] for r in ledger.read(RUN, "etl/a.sh")] == ["evicted", "success"]
    assert [r["status"] for r in ledger.read_all(RUN)["etl/a.sh"]] == ["evicted", "success"]


def test_ledger_reads_a_runs_records_within_the_clients_connection_pool(
    gcs_client: Any, make_bucket: Any
) -> None:
    """The report's parallel reads stay within the storage client's connection pool: past it, urllib3
    discards a connection after each read ("Connection pool is full") and a later read opens a new one."""
    from unittest import mock

    import urllib3

    bucket = make_bucket({})
    ledger = Ledger(gcs_client, bucket=bucket.name, root="sr")
    for i in range(60):
        ledger.append("r1", f"s{i:02d}.sh", {"try_number": 1, "status": "success"})
    discarded: list[str] = []
    pooled = urllib3.connectionpool.HTTPConnectionPool._put_conn

    def put(self: Any, conn: Any) -> None:
        if self.pool is not None and self.pool.full():
            discarded.append(self.host)
        pooled(self, conn)

    with mock.patch.object(urllib3.connectionpool.HTTPConnectionPool, "_put_conn", put):
        assert len(ledger.read_all("r1")) == 60
    assert discarded == []
