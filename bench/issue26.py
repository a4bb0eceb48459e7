"""Issue 26's recorded benchmark, alone on the machine: ours vs the bare KPO DAG in the four variants, the
per-phase split of each variant's task logs, and the warm parse.

For each variant (``bench.compare15``'s, one stack session each, ours then bare, each timed run waiting for a
1-minute load below 2): the two rows, then ``bench.phases`` on both runs' task logs (a deferrable task's
log split into its two task processes and the wait between them). Then ``bench.parse15``. Everything goes to
``bench/results/issue26-<UTC stamp>/`` (``compare.jsonl``, ``phases.jsonl``, ``parse15.json``,
``meta.json`` with the commit, the last commit that changed ``dags/`` and the load before and after), and
the markdown tables are printed (``python -m bench.issue26 --render DIR`` prints them again).

``python -m bench.issue26 [--variants preload-sync,...]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.phases import DEFERRED_KEYS, summarize

ROOT = Path(__file__).resolve().parents[1]
VARIANT_NAMES = ("preload-sync", "preload-deferrable", "nopreload-sync", "nopreload-deferrable")
TASKS = {"gcs_script_runner": "run_scripts", "bare_kpo_pods": "run_pods"}


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as out:
        out.write(json.dumps(row) + "\n")


def run(variants: list[str], out: Path) -> None:
    """Measure ``variants`` into ``out``."""
    # Imported here: rendering (bench.render) needs none of the stack.
    from bench import parse15
    from bench.compare15 import VARIANTS
    from bench.e2e import compare
    from local.airflow_env import airflow_home

    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dags_changed_at": _git("log", "-1", "--format=%h", "--", "dags"),
        "dirty_dags": bool(_git("status", "--porcelain", "--", "dags")),
        "load_before": os.getloadavg()[0],
        "cores": os.cpu_count(),
    }
    for name in variants:
        rows = compare(100, 1, "process", naive=False, **VARIANTS[name])
        for row in rows:
            row["variant"] = name
            _append(out / "compare.jsonl", row)
            logs = airflow_home() / "logs" / f"dag_id={row['dag']}" / f"run_id={row['run_id']}"
            deferrable = bool(VARIANTS[name]["deferrable"])
            phases = summarize(logs / f"task_id={TASKS[row['dag']]}", deferrable=deferrable)
            _append(out / "phases.jsonl", {"variant": name, "dag": row["dag"], "phases": phases})
    (out / "parse15.json").write_text(json.dumps(parse15.main(False)) + "\n")
    meta["load_after"] = os.getloadavg()[0]
    meta["ended"] = datetime.now(UTC).isoformat(timespec="seconds")
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def render(out: Path) -> str:
    """The markdown tables of one recorded folder."""
    meta = json.loads((out / "meta.json").read_text())
    rows = _rows(out / "compare.jsonl")
    lines = [
        f"Commit {meta['commit']} (dags/ last changed at {meta['dags_changed_at']}), "
        f"{meta['started']} to {meta['ended']}, {meta['cores']} cores, alone on the machine.",
        "",
        "| variant | ours wall s | bare wall s | **ratio** | median task ours / bare s "
        "| first→last start ours / bare s | states ours / bare | load at start ours / bare | quiet |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        ours = next(r for r in rows if r["variant"] == variant and r["dag"] == "gcs_script_runner")
        bare = next(r for r in rows if r["variant"] == variant and r["dag"] == "bare_kpo_pods")
        lines.append(
            f"| {variant} | {ours['wall_s']} | {bare['wall_s']} | **{ours['wall_s'] / bare['wall_s']:.2f}x** "
            f"| {ours['median_task_s']} / {bare['median_task_s']} "
            f"| {ours['first_to_last_start_s']} / {bare['first_to_last_start_s']} "
            f"| {json.dumps(ours['task_states'])} / {json.dumps(bare['task_states'])} "
            f"| {ours['load_at_start']} / {bare['load_at_start']} | {ours['quiet'] and bare['quiet']} |"
        )
    lines += _cpu_table(rows)
    phases = _rows(out / "phases.jsonl") if (out / "phases.jsonl").exists() else []
    sync_keys = ("parse_s", "pre_execute_s", "to_pod_s", "pod_s", "after_pod_s", "total_s")
    deferred_keys = tuple(f"{k}_s" for k in DEFERRED_KEYS)
    for keys in (sync_keys, deferred_keys):
        chosen = [p for p in phases if set(keys) <= set(p["phases"])]
        if not chosen:
            continue
        lines += ["", "| variant | dag | " + " | ".join(keys) + " |", "| --- | --- |" + " --- |" * len(keys)]
        for p in chosen:
            dag = "ours" if p["dag"] == "gcs_script_runner" else "bare KPO"
            cells = " | ".join(str(p["phases"][k]) for k in keys)
            lines.append(f"| {p['variant']} | {dag} | {cells} |")
    if (out / "parse15.json").exists():
        p = json.loads((out / "parse15.json").read_text())
        lines += [
            "",
            f"Warm parse (`bench.parse15`, {p['rounds']} rounds, median): "
            f"ours {p['ours_default_ms_median']} ms "
            f"({p['tasks_default']} tasks), bare mapped DAG {p['bare_ms_median']} ms: "
            f"**{p['ratio_median']}x**; ten run tasks {p['ours_ten_shards_ms_median']} ms.",
        ]
    return "\n".join(lines)


def _cpu_table(rows: list[dict[str, Any]]) -> list[str]:
    """CPU seconds per script of each run, by part of the stack (rows recorded with ``cpu_s``)."""
    pairs = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        ours = next(r for r in rows if r["variant"] == variant and r["dag"] == "gcs_script_runner")
        bare = next(r for r in rows if r["variant"] == variant and r["dag"] == "bare_kpo_pods")
        if "cpu_s" in ours and "cpu_s" in bare:
            pairs.append((variant, ours, bare))
    if not pairs:
        return []
    lines = [
        "",
        "CPU seconds per script (`bench/cpu.py`; on Composer the pods run on the cluster's nodes and the API "
        "servers are Google's: `airflow` is the environment's side):",
        "",
        "| variant | airflow ours / bare | **airflow ratio** | pods ours / bare "
        "| Kubernetes API double ours / bare | machine ours / bare |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for variant, ours, bare in pairs:
        per = {k: (ours["cpu_s"][k] / ours["tasks"], bare["cpu_s"][k] / bare["tasks"]) for k in ours["cpu_s"]}
        ratio = per["airflow"][0] / per["airflow"][1] if per["airflow"][1] else float("nan")
        lines.append(
            f"| {variant} | {per['airflow'][0]:.3f} / {per['airflow'][1]:.3f} | **{ratio:.2f}x** "
            f"| {per['pods'][0]:.3f} / {per['pods'][1]:.3f} "
            f"| {per['kube_api'][0]:.3f} / {per['kube_api'][1]:.3f} "
            f"| {per['machine'][0]:.3f} / {per['machine'][1]:.3f} |"
        )
    return lines + _airflow_parts_table(pairs)


def _ms(row: dict[str, Any], part: str) -> float:
    """CPU ms per script of one part in a recorded row (0 when it was not recorded)."""
    return 1000 * float(row["cpu_s"].get(part, 0.0)) / float(row["tasks"])


def _airflow_parts_table(pairs: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> list[str]:
    """The Airflow side's CPU per script by process (rows recorded with ``airflow:NAME`` keys)."""
    names = sorted({k for _, ours, _ in pairs for k in ours["cpu_s"] if k.startswith("airflow:")})
    if not names:
        return []
    lines = [
        "",
        "Airflow side's CPU ms per script by process, ours / bare (`airflow:scheduler` holds the task "
        "processes):",
        "",
        "| variant | " + " | ".join(n.removeprefix("airflow:") for n in names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for variant, ours, bare in pairs:
        cells = [f"{_ms(ours, n):.0f} / {_ms(bare, n):.0f}" for n in names]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.issue26")
    parser.add_argument("--variants", default=",".join(VARIANT_NAMES))
    parser.add_argument("--render", type=Path, help="print the tables of a recorded folder, run nothing")
    args = parser.parse_args(argv)
    if args.render:
        print(render(args.render))
        return 0
    out = ROOT / "bench" / "results" / f"issue26-{datetime.now(UTC):%Y%m%dT%H%M}"
    run(args.variants.split(","), out)
    print(render(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
