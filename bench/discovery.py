"""Benchmark 2: discovery of 1 000 and 10 000 scripts in the GCS emulator vs a bare listing, same run.

- bare: ``list_blobs`` of the prefix (the least any run-time discovery must do).
- ours, warm: list + header cache hit for every script + validation + sharding (the steady state: scripts
  rarely change between runs).
- ours, cold: list + every header downloaded (first run, or every script changed), per concurrency, over
  the pooled async session (the default) and through the storage client (the fallback, the old path),
  interleaved in the same run. CPU per script is split between this process (client) and the emulator.
Also peak memory of a cold discovery (tracemalloc, and the process's peak RSS) and XCom bytes per script.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dags"))
sys.path.insert(0, str(ROOT))

from script_runner.config.settings_loader import load_settings  # noqa: E402
from script_runner.discover.discovery import discover, shard  # noqa: E402
from script_runner.discover.header_cache import HeaderCache  # noqa: E402
from tests.conftest import start_emulator  # noqa: E402

FIELDS = "items(name,generation,md5Hash,size,updated),nextPageToken"


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


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
            cache = HeaderCache(client, bucket=bucket, name=cache_name)
            result = discover(settings, client=client, cache=cache)
            shard(result.specs, shards=10)

        row: dict[str, Any] = {"scripts": count}
        ours_warm()  # first run fills the cache
        bare_s = median_time(bare, repeats)
        warm_s = median_time(ours_warm, repeats)
        row.update(
            bare_list_s=round(bare_s, 3), ours_warm_s=round(warm_s, 3), warm_ratio=round(warm_s / bare_s, 2)
        )
        from script_runner.discover import sources

        pooled_read = sources.GcsSource.read_headers
        client_read = sources.Source.read_headers  # the storage client, a thread per read (fallback)

        def cold(conc: int, reader: Any) -> tuple[float, float, float]:
            """Median wall s, client CPU ms/script, emulator CPU ms/script of a cold discovery."""
            s = settings.model_copy(update={"discovery_concurrency": conc})
            sources.GcsSource.read_headers = reader  # type: ignore[method-assign]
            try:
                cpu0, emu0 = time.process_time(), proc_cpu(proc.pid)
                runs = max(1, repeats // 2)
                wall = median_time(lambda: discover(s, client=client), runs)
                cpu = (time.process_time() - cpu0) / runs / count * 1000
                emu = (proc_cpu(proc.pid) - emu0) / runs / count * 1000
            finally:
                sources.GcsSource.read_headers = pooled_read  # type: ignore[method-assign]
            return wall, cpu, emu

        for conc in (8, 32, 64):
            for label, reader in (("pooled", pooled_read), ("client", client_read)):
                if label == "client" and conc != 8:
                    continue  # more threads do not help the client past 8 (recorded before)
                wall, cpu, emu = cold(conc, reader)
                row[f"cold_{label}_c{conc}_s"] = round(wall, 3)
                row[f"cold_{label}_c{conc}_client_cpu_ms"] = round(cpu, 3)
                row[f"cold_{label}_c{conc}_emulator_cpu_ms"] = round(emu, 3)
        best = min(row[f"cold_pooled_c{c}_s"] for c in (8, 32, 64))
        row["cold_pooled_best_s"] = best
        row["cold_ratio"] = round(best / bare_s, 2)
        row["cold_client_ratio"] = round(row["cold_client_c8_s"] / bare_s, 2)
        # CPU per script against the listing's CPU per script (the machine is shared: wall time is noisy).
        cpu0, emu0 = time.process_time(), proc_cpu(proc.pid)
        bare_runs = 3
        for _ in range(bare_runs):
            bare()
        row["bare_cpu_ms_per_script"] = round(
            ((time.process_time() - cpu0) + (proc_cpu(proc.pid) - emu0)) / bare_runs / count * 1000, 4
        )
        tracemalloc.start()
        result = discover(settings.model_copy(update={"discovery_concurrency": 32}), client=client)
        shards = shard(result.specs, shards=10)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        row["peak_mib_cold"] = round(peak / 2**20, 1)
        row["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        tracemalloc.start()
        cache = HeaderCache(client, bucket=bucket, name=cache_name).load()
        result = discover(settings, client=client, cache=cache)
        shards = shard(result.specs, shards=10)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        row["peak_mib_warm"] = round(peak / 2**20, 1)
        # What each run task pulls per script: the spec alone (the settings left the items on 2026-12-05).
        row["xcom_bytes_per_script"] = round(len(json.dumps(shards)) / max(1, len(result.specs)))
        row["launch"], row["rejected"] = len(result.specs), len(result.rejected)
        return row
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    rows = [measure(n, 3 if quick else 5) for n in ([200] if quick else [1000, 10000])]
    for r in rows:
        print(json.dumps(r))
