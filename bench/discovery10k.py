"""Issue 15 goal 2 at full size, once: cold discovery of 10 000 scripts vs a bare listing, with peak memory.

``python -m bench.discovery10k [--count 10000]``: one emulator, the scripts uploaded, then in order a bare
listing, one cold discovery over the pooled session (concurrency 32) under tracemalloc, and a second bare
listing. The full benchmark (``bench.discovery``: several concurrencies and repeats, and the storage-client
path) takes too long at 10 000 on a shared machine; this is the one figure it lacked there. Writes
``bench/results/issue15-discovery-10k.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import tracemalloc

from bench.discovery import FIELDS, ROOT, populate, proc_cpu
from script_runner.config.settings_loader import load_settings
from script_runner.discover.discovery import discover, shard
from tests.conftest import start_emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.discovery10k", description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args(argv)
    from google.cloud import storage

    proc, url = start_emulator()
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        client = storage.Client(project="bench")
        bucket = f"bench-{args.count}"
        client.create_bucket(bucket)
        populate(client, bucket, args.count)
        settings = load_settings(
            environ={
                "GCS_BUCKET": bucket,
                "SCRIPT_RUNNER_PRESET": "local",
                "SCRIPT_RUNNER_MAX_SCRIPTS": "20000",
            }
        )

        def bare() -> float:
            start = time.perf_counter()
            list(client.list_blobs(bucket, prefix="data/", fields=FIELDS))
            return time.perf_counter() - start

        bare_before = bare()
        emu0, cpu0 = proc_cpu(proc.pid), time.process_time()
        tracemalloc.start()
        start = time.perf_counter()
        result = discover(settings.model_copy(update={"discovery_concurrency": 32}), client=client)
        shard(result.specs, shards=10)
        cold = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        row = {
            "scripts": args.count,
            "bare_list_s": [round(bare_before, 3), round(bare(), 3)],
            "cold_pooled_c32_s": round(cold, 2),
            "cold_ratio": round(cold / bare_before, 1),
            "client_cpu_ms_per_script": round((time.process_time() - cpu0) / args.count * 1000, 3),
            "emulator_cpu_ms_per_script": round((proc_cpu(proc.pid) - emu0) / args.count * 1000, 3),
            "peak_mib_cold": round(peak / 2**20, 1),
            "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "launch": len(result.specs),
            "rejected": len(result.rejected),
            "load": os.getloadavg(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
    finally:
        proc.terminate()
        proc.wait(10)
    print(json.dumps(row), flush=True)
    out = ROOT / "bench" / "results" / "issue15-discovery-10k.json"
    out.write_text(json.dumps(row, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
