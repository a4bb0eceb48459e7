"""`make demo`: start the local stack, run the DAG over examples/data/, print the report, stop the stack.

The stack is stopped on every exit path (success, failure, Ctrl-C, SIGTERM). ``SR_DEMO_KEEP=1`` leaves it up.
The run is triggered with ``{"rerun": true}`` so that a second demo on the same day runs the scripts again
instead of skipping them by their done-markers (run ``make up`` and trigger without it to see the skip).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from local import config, stack
from local.airflow_client import AirflowClient

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "data"
DAG_ID = "gcs_script_runner"
PREFIX = "data/"


def replace_prefix(client: Any, bucket_name: str, folder: Path, prefix: str) -> list[str]:
    """Replace gs://BUCKET/PREFIX with the files of ``folder`` (the way a user copies scripts into Composer):
    what was under the prefix is deleted, each file is uploaded under its path relative to ``folder``.

    :param client: a ``google.cloud.storage.Client``.
    :param bucket_name: the bucket.
    :param folder: the local folder to upload.
    :param prefix: the object name prefix (ends with /).
    :return: the uploaded object names, sorted.
    """
    bucket = client.bucket(bucket_name)
    for blob in list(client.list_blobs(bucket_name, prefix=prefix)):
        blob.delete()
    names = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = prefix + path.relative_to(folder).as_posix()
        bucket.blob(name).upload_from_filename(str(path))
        names.append(name)
    return names


def upload_examples(prefix: str = PREFIX) -> list[str]:
    """Replace gs://<bucket>/data/ with examples/data/."""
    from google.cloud import storage

    return replace_prefix(storage.Client(project="test-project"), config.BUCKET, EXAMPLES, prefix)


def upload_dags() -> list[str]:
    """Put the DAG, its package and .airflowignore under gs://<bucket>/dags/, as a Composer deploy does.

    Locally Airflow reads ./dags directly (no gcsfuse); the copy keeps the bucket laid out like Composer's.
    """
    from google.cloud import storage

    client = storage.Client(project="test-project")
    bucket = client.bucket(config.BUCKET)
    dags = ROOT / "dags"
    files = [dags / "gcs_script_runner.py", dags / "gcs_script_runner_upload.py", dags / ".airflowignore"]
    files += sorted((dags / "script_runner").glob("*.py"))
    names = []
    for path in files:
        name = "dags/" + path.relative_to(dags).as_posix()
        bucket.blob(name).upload_from_filename(str(path))
        names.append(name)
    return names


def read_report(run_id: str, state_root: str = "script-runner") -> dict[str, Any]:
    from google.cloud import storage

    blob = (
        storage.Client(project="test-project")
        .bucket(config.BUCKET)
        .blob(f"{state_root}/reports/{run_id}.json")
    )
    return json.loads(blob.download_as_bytes())  # type: ignore[no-any-return]


def peak_parallelism(rows: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """Most scripts running at the same moment (from the report's first start and last end per script)."""
    spans = []
    for row in rows:
        if row.get("started") and row.get("ended"):
            spans.append(
                (datetime.fromisoformat(row["started"]), datetime.fromisoformat(row["ended"]), row["path"])
            )
    best: tuple[int, list[str]] = (0, [])
    for start, _, _ in spans:
        running = [path for s, e, path in spans if s <= start < e]
        if len(running) > best[0]:
            best = (len(running), running)
    return best


def run_demo(client: AirflowClient, *, timeout: float) -> int:
    deployed = upload_dags()
    print(f"[demo] deployed {len(deployed)} DAG files to gs://{config.BUCKET}/dags/", flush=True)
    names = upload_examples()
    print(f"[demo] uploaded {len(names)} files to gs://{config.BUCKET}/{PREFIX}", flush=True)
    client.set_variable("script_runner_settings", json.dumps({"source": f"gs://{config.BUCKET}/{PREFIX}"}))
    client.wait_dag_parsed(DAG_ID, timeout=180)
    client.unpause(DAG_ID)
    started = time.monotonic()
    run_id = client.trigger_dag(DAG_ID, {"rerun": True})
    print(f"[demo] triggered {DAG_ID} run {run_id}; waiting (up to {timeout:.0f}s)", flush=True)
    state = client.wait_dag_run(DAG_ID, run_id, timeout=timeout)
    print(f"[demo] run finished: {state} in {time.monotonic() - started:.1f}s\n", flush=True)
    from script_runner.report.build import to_markdown

    report = read_report(run_id)
    print(to_markdown(report))
    peak, running = peak_parallelism(report["scripts"])
    print(f"[demo] peak parallelism: {peak} scripts running at once ({', '.join(sorted(running))})")
    print(f"[demo] report: gs://{config.BUCKET}/script-runner/reports/{run_id}.json (and .md, .html)")
    print(f"[demo] task logs: {config.RUN / 'airflow' / 'logs'}/dag_id={DAG_ID}/run_id={run_id}/")
    print(f"[demo] stack logs (kubelet, scheduler, ...): {config.LOGS}/")
    # The demo's run is expected to end "failed": one example fails on purpose and one is rejected.
    expected = {"flaky_exit3.sh": "failed", "bad_directive.sh": "rejected"}
    rows = {r["path"]: r["status"] for r in [*report["scripts"], *report["rejected"]]}
    wrong = {p: s for p, s in rows.items() if s != expected.get(p, "success")}
    if wrong:
        print(f"[demo] unexpected results: {wrong}", file=sys.stderr)
        return 1
    if peak < 2:
        print("[demo] scripts did not overlap: parallelism is broken", file=sys.stderr)
        return 1
    print(
        "[demo] every example ended as expected "
        "(flaky_exit3.sh fails on purpose, bad_directive.sh is rejected)"
    )
    return 0


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    keep = os.environ.get("SR_DEMO_KEEP") == "1"
    t0 = time.monotonic()
    try:
        stack.up()
        os.environ["STORAGE_EMULATOR_HOST"] = config.gcs_url()  # our own GCS calls go to the emulator
        print(f"[demo] stack up in {time.monotonic() - t0:.1f}s", flush=True)
        client = AirflowClient(f"http://127.0.0.1:{config.PORTS.airflow}")
        return run_demo(client, timeout=float(os.environ.get("SR_DEMO_TIMEOUT", "300")))
    except KeyboardInterrupt:
        print("[demo] interrupted; stopping the stack", file=sys.stderr)
        return 130
    finally:
        if not keep:
            stack.down()
        print(f"[demo] done in {time.monotonic() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
