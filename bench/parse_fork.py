"""The first parse of a DAG file in a task process forked from a preloaded worker, ours against bare.

With the worker preload (``local/preload/airflow_local_settings.py``), a LocalExecutor worker has imported
the KubernetesPodOperator and the runner's modules before it forks a process per task; that process parses
its DAG file once. This measures that parse's own CPU (``time.process_time`` in the child, so the figure
does not include time queued for a CPU, unlike the task logs' parse phase): one parent imports Airflow, the
provider and the preload's modules, then forks a child per sample that executes one DAG file, alternating
ours and the bare KPO DAG file.

Run it alone on the machine: ``python -m bench.parse_fork [--rounds N]`` prints one JSON object (median and
every sample, CPU ms per first parse).
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FILES = {
    "ours": ROOT / "dags" / "gcs_script_runner.py",
    "bare": ROOT / "bench" / "bare" / "bare_kpo_e2e_dag.py",
}
# What the local stack's DAG parse reads from the environment (local/airflow_env.py; runs on upload wired).
STACK_ENV = {
    "SCRIPT_RUNNER_DEFAULT_PRESET": "local",
    "SCRIPT_RUNNER_SCHEDULE": "none",
    "SCRIPT_RUNNER_RETRY_DELAY": "2s",
    "SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION": "projects/test-project/subscriptions/script-runner-uploads",
    "SCRIPT_RUNNER_UPLOAD_SETTLE": "2s",
    "PUBSUB_EMULATOR_HOST": "127.0.0.1:1",
    "STORAGE_EMULATOR_HOST": "http://127.0.0.1:1",
    "GCS_BUCKET": "composer-bucket",
}


def preload() -> None:
    """Import what the local worker preload imports (the parent of every task process)."""
    for folder in (ROOT / "dags", ROOT / "local" / "preload"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    import airflow_local_settings  # noqa: F401  (its imports are the point)


def first_parse_ms(path: Path) -> float:
    """CPU ms of one execution of ``path`` in a child forked from this process."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one parse, its CPU back through the pipe; it never returns
        code = 1
        try:
            os.close(read)
            start = time.process_time()
            runpy.run_path(str(path))
            os.write(write, f"{(time.process_time() - start) * 1000:.3f}".encode())
            code = 0
        except BaseException:  # whatever the file raised, the child ends here
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as answer:
        text = answer.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not text:
        raise RuntimeError(f"parsing {path} in a forked child failed (status {status})")
    return float(text)


def main(rounds: int) -> dict[str, Any]:
    """``rounds`` first parses of each file, alternating; medians in CPU ms."""
    os.environ.update({k: v for k, v in STACK_ENV.items() if k not in os.environ})
    preload()
    samples: dict[str, list[float]] = {name: [] for name in FILES}
    for _ in range(rounds):
        for name, path in FILES.items():
            samples[name].append(first_parse_ms(path))
    row: dict[str, Any] = {"bench": "parse_fork", "rounds": rounds, "load_avg_1m": os.getloadavg()[0]}
    for name, values in samples.items():
        row[f"{name}_cpu_ms_median"] = round(statistics.median(values), 1)
        row[f"{name}_cpu_ms"] = [round(v, 1) for v in values]
    row["ratio_median"] = round(row["ours_cpu_ms_median"] / row["bare_cpu_ms_median"], 2)
    return row


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.parse_fork")
    parser.add_argument("--rounds", type=int, default=15)
    print(json.dumps(main(parser.parse_args().rounds)))
