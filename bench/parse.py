"""Benchmark 1: DAG parse time vs number of scripts — ours, the naive baseline, a bare mapped DAG.

Two numbers per DAG file, each the median of repeated runs, measured side by side in one process tree:
- warm: the file executed again with its imports already loaded. This is what the dag-processor pays per
  parse, since Airflow pre-imports the modules a DAG file imports before it forks
  ([dag_processor] parsing_pre_import_modules, on by default).
- cold: a fresh interpreter that has imported only Airflow's SDK, then runs the file: what every task
  instance pays, because each task process parses its DAG file again.
"""

from __future__ import annotations

import json
import os
import runpy
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = {
    "ours": ROOT / "dags" / "gcs_script_runner.py",
    "naive": ROOT / "bench" / "baseline" / "naive_dag.py",
    "bare": ROOT / "bench" / "bare" / "bare_mapped_dag.py",
    "bare_kpo": ROOT / "bench" / "bare" / "bare_kpo_dag.py",
    # ours without the trigger form's params: what the params cost per parse (issue 14)
    "ours_no_params": ROOT / "bench" / "bare" / "ours_no_params_dag.py",
}
COLD_SNIPPET = (
    "import sys, time, runpy; sys.path.insert(0, sys.argv[2]); import airflow.sdk; "
    "t = time.perf_counter(); runpy.run_path(sys.argv[1]); print(time.perf_counter() - t)"
)


def make_folder(base: Path, count: int) -> Path:
    """A data folder with ``count`` small scripts in a few subfolders (what the naive DAG globs)."""
    folder = base / f"data-{count}"
    if folder.is_dir() and len(list(folder.rglob("*.sh"))) == count:
        return folder
    for i in range(count):
        path = folder / f"team{i % 10}" / f"job_{i:05}.sh"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!/bin/bash\n# runner: cpu=100m memory=64Mi\necho job {i}\n")
    return folder


def warm(path: Path, repeats: int) -> float:
    """Median seconds to execute the DAG file again with its imports loaded."""
    runpy.run_path(str(path))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        runpy.run_path(str(path))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def cold(path: Path, repeats: int, env: dict[str, str]) -> float:
    """Median seconds to parse the file in a fresh interpreter (Airflow imported first, not timed)."""
    samples = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", COLD_SNIPPET, str(path), str(ROOT / "dags")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def run(
    counts: list[int], *, repeats: int, cold_repeats: int, workdir: Path, cold_once: bool = False
) -> list[dict[str, object]]:
    """Measure every DAG at every script count; returns one row per (dag, count).

    ``cold_once`` (the smoke) measures the cold parse at the first count only and reuses it: a cold parse is
    a fresh interpreter importing Airflow, seconds each, and only the naive DAG's depends on the count.
    """
    cold_cache: dict[str, float] = {}
    sys.path.insert(0, str(ROOT / "dags"))
    rows: list[dict[str, object]] = []
    for count in counts:
        folder = make_folder(workdir, count)
        os.environ["NAIVE_DATA_DIR"] = str(folder)
        # Ours must not look at the source at parse time: point it somewhere that would fail if touched.
        os.environ["GCS_BUCKET"] = "bench-never-listed"
        os.environ["STORAGE_EMULATOR_HOST"] = "http://127.0.0.1:9"
        env = dict(os.environ)
        for name, path in FILES.items():
            w = warm(path, repeats)
            if cold_once and name != "naive" and name in cold_cache:
                c = cold_cache[name]
            else:
                c = cold_cache[name] = cold(path, cold_repeats, env)
            tasks = {"ours": count + 2, "ours_no_params": count + 2, "naive": count}.get(name, 4)
            rows.append(
                {
                    "dag": name,
                    "scripts": count,
                    "warm_ms": round(w * 1000, 2),
                    "cold_ms": round(c * 1000, 1),
                    "parses_per_run": tasks + 1,
                    "parse_cost_per_run_s": round((tasks * c + w), 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    result = run(
        [10, 100] if quick else [10, 100, 1000, 10000],
        repeats=5 if quick else 15,
        cold_repeats=1 if quick else 5,
        workdir=ROOT / "bench" / ".run" / "parse",
        cold_once=quick,
    )
    print(json.dumps(result))
