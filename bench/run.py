"""`make bench`: run every benchmark side by side, keep the raw JSON, and write bench/RESULTS.md.

``python -m bench.run [--quick] [--only parse,discovery,compare-process,...]``. Each benchmark runs in
its own process; its JSON lines are kept in ``bench/results/<name>.json``. ``--quick`` is the smoke that
``make test`` runs (small sizes, results under ``bench/.run/`` so recorded results are not overwritten).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.render import render

ROOT = Path(__file__).resolve().parents[1]
BENCHES: dict[str, list[str]] = {
    "parse": ["-m", "bench.parse"],
    "issue15-parse": ["-m", "bench.parse15"],
    "discovery": ["-m", "bench.discovery"],
    "hotpath": ["-m", "bench.hotpath"],
    # Same as "discovery" (recorded under its own name beside the earlier results).
    "issue15-discovery": ["-m", "bench.discovery"],
    "compare-process": ["-m", "bench.e2e", "compare", "--kubelet", "process"],
    "compare-podman": ["-m", "bench.e2e", "compare", "--kubelet", "podman"],
    "compare-preload": ["-m", "bench.e2e", "compare", "--kubelet", "process", "--preload"],
    # Issue 15's goal 1: ours vs the bare KPO DAG, with and without the preload, sync and deferrable.
    "issue15-compare": ["-m", "bench.compare15"],
    "deferrable": ["-m", "bench.e2e", "deferrable"],
    # Issue 15's goal 5: pod start -> the script's first line, per entrypoint phase (podman kubelet).
    "issue15-podstart": ["-m", "bench.podstart"],
    # Issue 15's goal 4: one full run to completion (1 000 scripts, process kubelet, deferrable, defaults).
    # Long (about 0.75-8 s a script on two cores): not in the default list; `make bench-fullrun` runs it.
    "issue15-fullrun": ["-m", "bench.fullrun"],
    "shards": ["-m", "bench.e2e", "shards"],
    "scale": ["-m", "bench.e2e", "scale"],
}
LONG = {"issue15-fullrun"}  # run only when named in --only


def machine() -> dict[str, Any]:
    def first(cmd: list[str]) -> str:
        try:
            return (
                subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
            )
        except (OSError, IndexError, subprocess.SubprocessError):
            return "n/a"

    mem_kib = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": first(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).strip(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "airflow": first([sys.executable, "-c", "import airflow; print(airflow.__version__)"]),
        "podman": first(["podman", "--version"]),
    }


def run_one(name: str, args: list[str], *, quick: bool, out_dir: Path) -> list[dict[str, Any]]:
    cmd = [sys.executable, *args, *(["--quick"] if quick else [])]
    print(f"[bench] {name}: {' '.join(cmd[1:])}", flush=True)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3 * 3600)
    rows = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rows.append(json.loads(line))
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"[bench] {name} failed with exit {proc.returncode}")
    (out_dir / f"{name}.json").write_text(json.dumps(rows, indent=1))
    print(f"[bench] {name}: {len(rows)} rows in {time.monotonic() - start:.0f}s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(n for n in BENCHES if n not in LONG))
    args = parser.parse_args(argv)
    out_dir = ROOT / "bench" / (".run/quick" if args.quick else "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "machine.json").write_text(json.dumps(machine(), indent=1))
    for name in args.only.split(","):
        run_one(name, BENCHES[name], quick=args.quick, out_dir=out_dir)
    text = render(out_dir)
    if args.quick:
        print(text)
    else:
        (ROOT / "bench" / "RESULTS.md").write_text(text)
        print("[bench] wrote bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
