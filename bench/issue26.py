"""Issue 26's recorded benchmark, alone on the machine: ours vs the bare KPO DAG in the four variants, the
per-phase split of each variant's task logs, and the warm parse.

For each variant (``bench.compare15``'s, one stack session each, ours then bare, each timed run waiting for a
1-minute load below 2): the two rows, then ``bench.phases`` on both runs' task logs (a deferrable task's
log split into its two task processes and the wait between them). Then ``bench.parse15``. Everything goes to
``bench/results/issue26-<UTC stamp>/`` (``compare.jsonl``, ``phases.jsonl``, ``parse15.json``,
``meta.json`` with the commit, the last commit that changed ``dags/`` and the load before and after), and
the markdown tables are printed (``python -m bench.issue26 --render DIR`` prints them again).

``python -m bench.issue26 [--variants preload-sync,...] [--repeats N]``: with ``N`` > 1 each variant runs ours
and bare ``N`` times, alternating, and each figure of the tables is the median over them (the ratio that of
the median walls; each repeat's own ratio is listed beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def run(variants: list[str], out: Path, repeats: int = 1) -> None:
    """Measure ``variants`` into ``out``: ``repeats`` alternating pairs (ours, bare) per variant, in one stack
    session each; the tables give the median of the repeats (one run on this machine moves by a third)."""
    # Imported here: rendering (bench.render) needs none of the stack.
    from bench import parse15
    from bench.compare15 import VARIANTS
    from bench.e2e import compare
    from local.airflow_env import airflow_home

    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeats": repeats,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dags_changed_at": _git("log", "-1", "--format=%h", "--", "dags"),
        "dirty_dags": bool(_git("status", "--porcelain", "--", "dags")),
        "load_before": os.getloadavg()[0],
        "cores": os.cpu_count(),
    }
    for name in variants:
        rows = compare(100, repeats, "process", naive=False, **VARIANTS[name])
        for index, row in enumerate(rows):
            row["variant"], row["repeat"] = name, index // 2
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


def _median(values: list[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, int | float)]
    return round(statistics.median(numbers), 3) if numbers else values[0]


def combined(rows: list[dict[str, Any]], variant: str, dag: str) -> dict[str, Any]:
    """One DAG's row of a variant: the run itself, or with repeats the median of each figure over them
    (CPU seconds part by part), the states added up, the highest load at a start, ``walls`` each run's."""
    runs = [r for r in rows if r["variant"] == variant and r["dag"] == dag]
    if len(runs) == 1:
        return runs[0]
    row = dict(runs[0])
    for key in ("wall_s", "median_task_s", "first_to_last_start_s"):
        row[key] = _median([r[key] for r in runs])
    if all("cpu_s" in r for r in runs):
        row["cpu_s"] = {k: _median([r["cpu_s"].get(k, 0.0) for r in runs]) for k in runs[0]["cpu_s"]}
    states: dict[str, int] = {}
    for r in runs:
        for state, count in r["task_states"].items():
            states[state] = states.get(state, 0) + count
    row["task_states"] = states
    row["load_at_start"] = max(r["load_at_start"] for r in runs)
    row["quiet"] = all(r["quiet"] for r in runs)
    row["walls"] = [r["wall_s"] for r in runs]
    return row


def render(out: Path) -> str:
    """The markdown tables of one recorded folder."""
    meta = json.loads((out / "meta.json").read_text())
    rows = _rows(out / "compare.jsonl")
    repeats = int(meta.get("repeats", 1))
    lines = [
        f"Commit {meta['commit']} (dags/ last changed at {meta['dags_changed_at']}), "
        f"{meta['started']} to {meta['ended']}, {meta['cores']} cores, alone on the machine"
        + (
            f"; each figure the median of {repeats} alternating runs of ours and bare."
            if repeats > 1
            else "."
        ),
        "",
        "| variant | ours wall s | bare wall s | **ratio** | median task ours / bare s "
        "| first→last start ours / bare s | states ours / bare | load at start ours / bare | quiet "
        "| ratio of each repeat |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    pairs = [
        (variant, combined(rows, variant, "gcs_script_runner"), combined(rows, variant, "bare_kpo_pods"))
        for variant in dict.fromkeys(r["variant"] for r in rows)
    ]
    for variant, ours, bare in pairs:
        walls = zip(ours.get("walls", [ours["wall_s"]]), bare.get("walls", [bare["wall_s"]]), strict=True)
        each = [o / b for o, b in walls]
        lines.append(
            f"| {variant} | {ours['wall_s']} | {bare['wall_s']} | **{ours['wall_s'] / bare['wall_s']:.2f}x** "
            f"| {ours['median_task_s']} / {bare['median_task_s']} "
            f"| {ours['first_to_last_start_s']} / {bare['first_to_last_start_s']} "
            f"| {json.dumps(ours['task_states'])} / {json.dumps(bare['task_states'])} "
            f"| {ours['load_at_start']} / {bare['load_at_start']} | {ours['quiet'] and bare['quiet']} "
            f"| {', '.join(f'{r:.2f}' for r in each)} |"
        )
    lines += _cpu_table(pairs)
    phases = _rows(out / "phases.jsonl") if (out / "phases.jsonl").exists() else []
    sync_keys = ("parse_s", "pre_execute_s", "to_pod_s", "pod_s", "after_pod_s", "total_s")
    deferred_keys = tuple(f"{k}_s" for k in DEFERRED_KEYS)
    for keys in (sync_keys, deferred_keys):
        chosen = [p for p in phases if p["phases"] and set(keys) <= set(p["phases"])]
        if not chosen:
            continue
        lines += ["", "| variant | dag | " + " | ".join(keys) + " |", "| --- | --- |" + " --- |" * len(keys)]
        for variant, dag_id in dict.fromkeys((p["variant"], p["dag"]) for p in chosen):
            runs = [p["phases"] for p in chosen if (p["variant"], p["dag"]) == (variant, dag_id)]
            dag = "ours" if dag_id == "gcs_script_runner" else "bare KPO"
            cells = " | ".join(str(_median([r[k] for r in runs])) for k in keys)
            lines.append(f"| {variant} | {dag} | {cells} |")
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


def _cpu_table(variants: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> list[str]:
    """CPU seconds per script of each variant's (ours, bare) rows, by part of the stack (rows recorded with
    ``cpu_s``)."""
    pairs = [(variant, ours, bare) for variant, ours, bare in variants if "cpu_s" in ours and "cpu_s" in bare]
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
    parser.add_argument("--repeats", type=int, default=1, help="alternating pairs per variant (median)")
    parser.add_argument("--render", type=Path, help="print the tables of a recorded folder, run nothing")
    args = parser.parse_args(argv)
    if args.render:
        print(render(args.render))
        return 0
    out = ROOT / "bench" / "results" / f"issue26-{datetime.now(UTC):%Y%m%dT%H%M}"
    run(args.variants.split(","), out, repeats=args.repeats)
    print(render(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
