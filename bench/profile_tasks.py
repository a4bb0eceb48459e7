"""Where a task's time goes, ours against the bare KPO DAG: py-spy over the scheduler and every process it
forks (workers, task supervisors, task processes) during one run of each, then the samples of the task
processes summed per function of interest.

Samples are taken 200 times a second of every process that is running or waiting for a CPU, so a figure is
the time spent in (or queued for the CPU under) that function, summed over the run's tasks: under 16 task
processes on two cores, one millisecond of CPU shows as several. Compare ours with bare, row by row; the
rows overlap (a row counts everything below it).

``python -m bench.profile_tasks [--scripts 32] [--deferrable]`` (preload on, like the issue 26 variant in
which our tasks cost most against bare) writes ``bench/results/profile-<UTC stamp>/summary.json`` (the raw
collapsed stacks go to ``bench/.run/profiles/``) and prints the table; ``--render DIR`` prints it again.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "bench" / ".run" / "profiles"
RATE = 200
# (row, a frame that starts with this): the task-side functions the issue 26 phases are made of.
ROWS = [
    ("task process (all)", ""),
    ("parse of the DAG file", "DagBag.collect_dags"),
    ("mapped argument resolution (XCom pull)", "MappedOperator._expand_mapped_kwargs"),
    ("execute (ours: the policies around KPO)", "ScriptPodOperator.execute "),
    ("  plan check (Variable read)", "ChecksPlanAgainstSettings._refuse_untrusted_plan"),
    ("  done-marker check (ledger, connection)", "ChecksDoneMarkers._done_for_interval"),
    ("KPO execute_sync", "KubernetesPodOperator.execute_sync "),
    ("  build_pod_request_obj", "KubernetesPodOperator.build_pod_request_obj"),
    ("  get_or_create_pod", "KubernetesPodOperator.get_or_create_pod"),
    ("    KPO's debug YAML of the request", "safe_dump "),
    ("  find_pod", "KubernetesPodOperator.find_pod"),
    ("  await_pod_start", "KubernetesPodOperator.await_pod_start"),
    ("  logs and completion", "PodManager.await_pod_completion"),
    ("  cleanup / post_complete_action", "KubernetesPodOperator.post_complete_action"),
    ("deferral (launch, trigger hand-over)", "KubernetesPodOperator.execute_async"),
    ("resumption (trigger_reentry)", "KubernetesPodOperator.trigger_reentry"),
    ("ledger record", "RecordsVerdicts._record"),
]


def _stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    """A py-spy raw file's task-process stacks: frames (root first, ``process ...`` entries dropped) and
    sample count."""
    for line in path.read_text(errors="replace").splitlines():
        match = re.match(r"(.*) (\d+)$", line)
        if match is None or "execution_time/task_runner.py" not in match[1]:
            continue
        frames = [f for f in match[1].split(";") if not f.startswith("process ")]
        yield frames, int(match[2])


def summarize(path: Path, tasks: int) -> dict[str, float]:
    """Seconds per task in each row of :data:`ROWS` (samples / rate / tasks)."""
    counts: Counter[str] = Counter()
    for frames, samples in _stacks(path):
        for row, prefix in ROWS:
            if any(f.startswith(prefix) for f in frames):
                counts[row] += samples
    return {row: round(counts[row] / RATE / max(tasks, 1), 3) for row, _ in ROWS}


def table(summary: dict[str, dict[str, float]]) -> str:
    """The markdown table: seconds per task, ours, bare and the difference."""
    ours, bare = summary["ours"], summary["bare"]
    lines = ["| where (task processes) | ours s/task | bare s/task | ours - bare |", "|---|---|---|---|"]
    for row, _ in ROWS:
        lines.append(f"| {row} | {ours[row]:.3f} | {bare[row]:.3f} | {ours[row] - bare[row]:+.3f} |")
    return "\n".join(lines)


def run(scripts: int, deferrable: bool, out: Path, slots: int | None = None) -> dict[str, dict[str, float]]:
    """Profile one run of ours then one of bare on a fresh stack (preload on); with ``slots``, that many
    task processes at a time (the executor's parallelism): with as many as there are cores, a sample is
    close to a CPU sample rather than time queued for a CPU."""
    from bench.e2e import BARE_KPO, OURS, _use_source, run_and_time, session, upload, write_scripts
    from bench.quiet import wait_quiet
    from local import config

    out.mkdir(parents=True, exist_ok=True)
    folder = write_scripts(scripts)
    env = {
        "SR_KUBELET": "process",
        "NAIVE_DATA_DIR": str(folder),
        "BARE_KPO_ITEMS": str(scripts),
        "SR_PRELOAD_PROVIDERS": "1",
        **({"BARE_KPO_DEFERRABLE": "1"} if deferrable else {}),
        **({"SR_PARALLELISM": str(slots)} if slots else {}),
    }
    summary: dict[str, dict[str, float]] = {}
    rows = []
    with session(**env) as client:
        upload(folder, f"bench-{scripts}/")
        _use_source(client, f"bench-{scripts}/", deferrable=deferrable)
        client.wait_dag_parsed(OURS, timeout=180)
        client.wait_dag_parsed(BARE_KPO, timeout=180)
        scheduler = (config.PIDS / "scheduler.pid").read_text().split()[0]
        for name, dag_id, conf in (("ours", OURS, {"rerun": True}), ("bare", BARE_KPO, {})):
            wait_quiet()
            raw = RAW / out.name / f"{name}.txt"  # megabytes: kept out of git
            raw.parent.mkdir(parents=True, exist_ok=True)
            spy = subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses", "--nonblocking",
                 "-p", scheduler, "-r", str(RATE), "--format", "raw", "-o", str(raw)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(2)  # py-spy attached before the first task
            row = run_and_time(client, dag_id, conf)
            spy.send_signal(signal.SIGINT)
            spy.wait(120)
            rows.append(row)
            summary[name] = summarize(raw, int(row["tasks"]))
    meta = {
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip(),
        "scripts": scripts,
        "deferrable": deferrable,
        "slots": slots,
        "runs": rows,
        "summary": summary,
    }
    (out / "summary.json").write_text(json.dumps(meta, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_tasks")
    parser.add_argument("--scripts", type=int, default=32)
    parser.add_argument("--deferrable", action="store_true")
    parser.add_argument("--slots", type=int, help="task processes at a time (default: the stack's)")
    parser.add_argument("--render", type=Path, help="print the table of a recorded folder")
    args = parser.parse_args(argv)
    if args.render:
        print(table(json.loads((args.render / "summary.json").read_text())["summary"]))
        return 0
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M")
    out = ROOT / "bench" / "results" / f"profile-{stamp}"
    print(table(run(args.scripts, args.deferrable, out, args.slots)))
    print(f"recorded in {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
