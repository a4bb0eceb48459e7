"""Benchmark 2: discovery of 1 000 and 10 000 scripts in the GCS emulator vs a bare listing, same run.

- bare: ``list_blobs`` of the prefix (the least any run-time discovery must do).
- ours, warm: list + header cache hit for every script + validation + sharding (the steady state: scripts
  rarely change between runs).
- ours, cold: list + every header downloaded (first run, or every script changed), per concurrency.
Also peak Python memory of a discovery (tracemalloc) and the XCom bytes per script.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dags"))
sys.path.insert(0, str(ROOT))

from script_runner.discovery import discover, shard  # noqa: E402
from script_runner.header_cache import HeaderCache  # noqa: E402
from script_runner.settings import load_settings  # noqa: E402
from tests.conftest import EMULATOR_BIN, free_port  # noqa: E402

FIELDS = "items(name,generation,md5Hash,size,updated),nextPageToken"


def start_emulator() -> tuple[subprocess.Popen[bytes], str]:
    """fake-gcs-server in memory on a free port."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(EMULATOR_BIN),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "memory",
            "-log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/storage/v1/b", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("emulator did not start")


def populate(client: Any, bucket: str, count: int) -> None:
    """Upload ``count`` scripts with realistic headers, 1 in 50 with a bad directive."""
    b = client.bucket(bucket)

    def put(i: int) -> None:
        bad = "memory=lots" if i % 50 == 0 else f"memory={64 + i % 8 * 64}Mi"
        b.blob(f"data/team{i % 20}/job_{i:05}.sh").upload_from_string(
            f"#!/usr/bin/env bash\n# job {i}\n# runner: cpu=100m {bad} timeout=10m retries=1\n"
            f"set -e\necho {i}\n"
        )

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, range(count)))


def median_time(fn: Any, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(count: int, repeats: int) -> dict[str, Any]:
    from google.cloud import storage

    proc, url = start_emulator()
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        client = storage.Client(project="bench")
        bucket = f"bench-{count}"
        client.create_bucket(bucket)
        populate(client, bucket, count)
        settings = load_settings(
            environ={
                "GCS_BUCKET": bucket,
                "SCRIPT_RUNNER_PRESET": "local",
                "SCRIPT_RUNNER_MAX_SCRIPTS": "20000",
            }
        )
        cache_name = "script-runner/cache/headers.json"

        def bare() -> None:
            list(client.list_blobs(bucket, prefix="data/", fields=FIELDS))

        def ours_warm() -> None:
            cache = HeaderCache(client, bucket=bucket, name=cache_name, fingerprint=settings.fingerprint())
            result = discover(settings, client=client, cache=cache)
            shard(result.specs, shards=10)

        row: dict[str, Any] = {"scripts": count}
        ours_warm()  # first run fills the cache
        bare_s = median_time(bare, repeats)
        warm_s = median_time(ours_warm, repeats)
        row.update(
            bare_list_s=round(bare_s, 3), ours_warm_s=round(warm_s, 3), warm_ratio=round(warm_s / bare_s, 2)
        )
        for conc in (8, 32, 64):
            s = settings.model_copy(update={"discovery_concurrency": conc})
            row[f"ours_cold_c{conc}_s"] = round(
                median_time(lambda s=s: discover(s, client=client), max(1, repeats // 2)), 3
            )
        row["cold_ratio_c32"] = round(row["ours_cold_c32_s"] / bare_s, 2)
        tracemalloc.start()
        cache = HeaderCache(client, bucket=bucket, name=cache_name, fingerprint=settings.fingerprint()).load()
        result = discover(settings, client=client, cache=cache)
        shards = shard(result.specs, shards=10)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        row["peak_mib_warm"] = round(peak / 2**20, 1)
        row["xcom_bytes_per_script"] = round(len(json.dumps(shards)) / max(1, len(result.specs)))
        row["launch"], row["rejected"] = len(result.specs), len(result.rejected)
        return row
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    rows = [measure(n, 3 if quick else 7) for n in ([200] if quick else [1000, 10000])]
    for r in rows:
        print(json.dumps(r))
