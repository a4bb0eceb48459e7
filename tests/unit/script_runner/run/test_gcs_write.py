"""Create-only writes over plain HTTP against the GCS emulator, and the ledger written that way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from script_runner.run.gcs_write import GcsWriteError, GcsWriter, writer_for_connection
from script_runner.run.ledger import Ledger

ROOT = Path(__file__).resolve().parents[4]
RUN = "manual__2026-12-04T00:00:00+00:00"


def _no_client() -> Any:
    raise AssertionError("the storage client was asked for")


def test_gcs_write_creates_an_object_once_and_answers_false_when_the_name_is_taken(
    gcs_client: Any, make_bucket: Any
) -> None:
    bucket = make_bucket({}).name
    writer = GcsWriter(None)
    assert writer.create(bucket, "a/b c.json", b'{"n": 1}') is True
    assert writer.create(bucket, "a/b c.json", b'{"n": 2}') is False
    blob = gcs_client.bucket(bucket).get_blob("a/b c.json")
    assert json.loads(blob.download_as_bytes()) == {"n": 1}
    assert blob.content_type == "application/json"


def test_gcs_write_reads_an_object_none_when_missing_and_write_replaces_it(
    gcs_client: Any, make_bucket: Any
) -> None:
    bucket = make_bucket({}).name
    http = GcsWriter(None)
    assert http.read(bucket, "cache/done/a b.sh/x") is None
    http.write(bucket, "cache/done/a b.sh/x", b'{"run": "r1"}')
    http.write(bucket, "cache/done/a b.sh/x", b'{"run": "r2"}')  # a rerun's marker replaces the first
    assert json.loads(http.read(bucket, "cache/done/a b.sh/x") or b"") == {"run": "r2"}
    assert json.loads(gcs_client.bucket(bucket).blob("cache/done/a b.sh/x").download_as_bytes()) == {
        "run": "r2"
    }


def test_gcs_write_refused_requests_raise_with_the_status(gcs_emulator: str) -> None:
    http = GcsWriter(None)
    with pytest.raises(GcsWriteError, match=r"gs://no-such-bucket-26/x: HTTP 404"):
        http.write("no-such-bucket-26", "x", b"{}")


def test_gcs_write_ledger_keeps_both_records_of_one_try_written_side_by_side(
    gcs_client: Any, make_bucket: Any
) -> None:
    # A cancel and an end of the same try racing, over plain HTTP: the second takes the next seq.
    bucket = make_bucket({}).name
    writer = Ledger(bucket=bucket, root="sr", connect=_no_client, writer=GcsWriter(None))
    records = [{"status": s, "action": "cancel", "try_number": 3, "i": i} for i, s in enumerate("ab" * 4)]
    threads = [threading.Thread(target=writer.append, args=(RUN, "x.sh", r)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = Ledger(gcs_client, bucket=bucket, root="sr")
    assert sorted(r["i"] for r in reader.read(RUN, "x.sh")) == list(range(8))


def test_gcs_write_a_run_tasks_ledger_write_imports_no_storage_client(
    gcs_emulator: str, make_bucket: Any, tmp_path: Path
) -> None:
    # What a run task does after its pod, in a fresh process: one record, without google.cloud.storage.
    bucket = make_bucket({}).name
    code = f"""
import json, sys
from script_runner.run.ledger import ledger_for_connection
ledger = ledger_for_connection("google_cloud_default", bucket={bucket!r}, root="sr")
ledger.append({RUN!r}, "etl/a.sh", {{"status": "success", "try_number": 1}})
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("google.cloud.storage", "grpc", "google.api_core")))))
"""
    conn = {"conn_type": "google_cloud_platform", "extra": {"project": "test-project", "is_anonymous": True}}
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "dags"),
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(conn),
        "STORAGE_EMULATOR_HOST": gcs_emulator,
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_gcs_write_the_record_written_over_http_is_what_the_report_reads(
    gcs_client: Any, make_bucket: Any
) -> None:
    bucket = make_bucket({}).name
    Ledger(bucket=bucket, root="sr", connect=_no_client, writer=GcsWriter(None)).append(
        RUN, "etl/a.sh", {"status": "success", "try_number": 1}
    )
    names = [b.name for b in gcs_client.list_blobs(bucket, prefix="sr/ledger/")]
    assert names == [f"sr/ledger/{RUN}/etl/a.sh/00001-000.json"]
    assert Ledger(gcs_client, bucket=bucket, root="sr").read_all(RUN) == {
        "etl/a.sh": [{"status": "success", "try_number": 1}]
    }


@pytest.mark.parametrize(
    ("extra", "plain"),
    [
        pytest.param({"project": "p", "is_anonymous": True}, True, id="anonymous"),
        pytest.param({"extra__google_cloud_platform__key_path": "/k.json"}, False, id="key-file-old-prefix"),
        pytest.param({"keyfile_dict": '{"type": "service_account"}'}, False, id="key-in-the-connection"),
        pytest.param({"impersonation_chain": "a@b.iam.gserviceaccount.com"}, False, id="impersonation"),
        pytest.param({"key_secret_name": "k"}, False, id="key-in-secret-manager"),
    ],
)
def test_gcs_write_leaves_connections_with_keys_to_the_google_provider(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: dict[str, Any], plain: bool
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv(
        "AIRFLOW_CONN_SR_GCP", json.dumps({"conn_type": "google_cloud_platform", "extra": extra})
    )
    writer = writer_for_connection("sr_gcp")
    assert (writer is not None) is plain
    if writer is not None:
        assert writer.credentials is None  # anonymous: no Authorization header


def test_gcs_write_a_missing_connection_falls_back_to_the_provider() -> None:
    assert writer_for_connection("sr_no_such_connection") is None
