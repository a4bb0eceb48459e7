"""Render bench/RESULTS.md from the raw results (``python -m bench.render [DIR]``)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _load(folder: Path, name: str) -> list[dict[str, Any]]:
    path = folder / f"{name}.json"
    return list(json.loads(path.read_text())) if path.exists() else []


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def _parse(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(not run)", ""]
    by = {(r["dag"], r["scripts"]): r for r in rows}
    counts = sorted({r["scripts"] for r in rows})
    table = []
    for n in counts:
        ours, naive, bare = by.get(("ours", n), {}), by.get(("naive", n), {}), by.get(("bare", n), {})
        bare_kpo = by.get(("bare_kpo", n), {})
        plain = by.get(("ours_no_params", n), {})
        table.append(
            [
                n,
                ours.get("warm_ms"),
                plain.get("warm_ms"),
                bare.get("warm_ms"),
                round(ours["warm_ms"] / bare["warm_ms"], 2) if ours and bare else None,
                naive.get("warm_ms"),
                ours.get("cold_ms"),
                plain.get("cold_ms"),
                bare_kpo.get("cold_ms"),
                naive.get("cold_ms"),
                ours.get("parse_cost_per_run_s"),
                naive.get("parse_cost_per_run_s"),
            ]
        )
    return _table(
        [
            "scripts",
            "ours warm ms",
            "ours without params warm ms",
            "bare mapped warm ms",
            "**ours/bare**",
            "naive warm ms",
            "ours cold ms",
            "ours without params cold ms",
            "bare KPO cold ms",
            "naive cold ms",
            "ours parse s/run",
            "naive parse s/run",
        ],
        table,
    )


def _discovery(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(not run)", ""]
    if "cold_pooled_best_s" not in rows[0]:  # recorded before the pooled reads
        keys = ["scripts", "bare_list_s", "ours_warm_s", "warm_ratio", "ours_cold_c8_s", "ours_cold_c32_s"]
        keys += ["ours_cold_c64_s", "cold_ratio_c32", "peak_mib_warm", "xcom_bytes_per_script"]
        return _table(keys, [[r.get(k) for k in keys] for r in rows])
    out = _table(
        [
            "scripts",
            "bare list s",
            "warm s",
            "**warm/bare**",
            "cold pooled c8 / c32 / c64 s",
            "**cold best/bare**",
            "cold via client c8 s (old path)",
            "client/bare",
            "peak MiB cold (warm)",
            "max RSS MiB",
            "XCom B/script",
        ],
        [
            [
                r["scripts"],
                r["bare_list_s"],
                r["ours_warm_s"],
                r["warm_ratio"],
                " / ".join(str(r[f"cold_pooled_c{c}_s"]) for c in (8, 32, 64)),
                r["cold_ratio"],
                r["cold_client_c8_s"],
                r["cold_client_ratio"],
                f"{r['peak_mib_cold']} ({r['peak_mib_warm']})",
                r["max_rss_mib"],
                r["xcom_bytes_per_script"],
            ]
            for r in rows
        ],
    )
    out += [
        "CPU per script (ms; this process + the emulator), cold, against the listing's:",
        "",
        *_table(
            [
                "scripts",
                "pooled c8 client",
                "pooled c32 client",
                "client c8 client",
                "emulator (pooled c8)",
                "listing",
            ],
            [
                [
                    r["scripts"],
                    r["cold_pooled_c8_client_cpu_ms"],
                    r["cold_pooled_c32_client_cpu_ms"],
                    r["cold_client_c8_client_cpu_ms"],
                    r["cold_pooled_c8_emulator_cpu_ms"],
                    r["bare_cpu_ms_per_script"],
                ]
                for r in rows
            ],
        ),
    ]
    return out


def _rows(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of the rows as a column."""
    if not rows:
        return ["(not run)", ""]
    keys = list(rows[0])
    return _table(keys, [[r.get(k) for k in keys] for r in rows])


def _hotpath(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(not run)", ""]
    keys = [
        "rounds",
        "variable_reads_per_task",
        "gcs_requests_before_pod",
        "gcs_requests_after_pod",
        "ours_pre_pod_ms",
        "bare_kpo_pre_pod_ms",
        "pre_pod_ratio",
        "ours_after_pod_ms",
    ]
    return _table(keys, [[r.get(k) for k in keys] for r in rows])


def _compare(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(not run)", ""]
    out = []
    for mode in sorted({r["kubelet"] for r in rows}):
        sub = [r for r in rows if r["kubelet"] == mode]
        ours = [r for r in sub if r["dag"] == "gcs_script_runner"]
        naive = [r for r in sub if r["dag"] == "naive_bash_scripts"]
        bare_kpo = [r for r in sub if r["dag"] == "bare_kpo_pods"]

        def med(rs: list[dict[str, Any]], key: str) -> float | None:
            values = [r[key] for r in rs if r.get(key) is not None]
            return round(statistics.median(values), 2) if values else None

        n = sub[0]["scripts"]
        o_wall, b_wall = med(ours, "wall_s"), med(naive, "wall_s")
        out += _table(
            [
                "kubelet",
                "dag",
                "runs",
                "states",
                "median wall s",
                "first→last start s",
                "median task s",
                "wall s/script",
            ],
            [
                [
                    mode,
                    name,
                    len(rs),
                    "; ".join(json.dumps(r["task_states"]) for r in rs),
                    med(rs, "wall_s"),
                    med(rs, "first_to_last_start_s"),
                    med(rs, "median_task_s"),
                    round((med(rs, "wall_s") or 0) / n, 3),
                ]
                for name, rs in (("ours", ours), ("naive BashOperator", naive), ("bare KPO", bare_kpo))
                if rs
            ],
        )
        if o_wall and b_wall:
            out += [f"**{mode}: ours / naive wall time = {o_wall / b_wall:.2f}x** ({n} scripts)", ""]
        k_wall = med(bare_kpo, "wall_s")
        if o_wall and k_wall:
            out += [f"**{mode}: ours / bare KPO wall time = {o_wall / k_wall:.2f}x**", ""]
    return out


def _deferrable(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(not run)", ""]
    out = _table(
        [
            "mode",
            "scripts x sleep",
            "worker slots",
            "wall s",
            "max pods running",
            "**share of pod-running time with its own slot held**",
            "max pods running with own slot",
            "max slots busy (any task) while pods run",
            "max deferred",
        ],
        [
            [
                "deferrable" if r["deferrable"] else "sync",
                f"{r['scripts']} x {r['sleep_s']} s",
                r["worker_slots"],
                r["wall_s"],
                r.get("max_pods_running"),
                "" if r.get("own_slot_share") is None else f"{100 * r['own_slot_share']:.1f} %",
                r.get("max_pods_running_with_own_slot"),
                r.get("max_slots_held_while_pods_run"),
                r.get("max_deferred"),
            ]
            for r in rows
        ],
    )
    return [
        *out,
        'Sampled twice a second. A pod "with its own slot" is Running while its task instance is in state',
        "`running` (a worker slot); deferred tasks hold none. Slots busy while pods run are other tasks",
        "launching or collecting their pods (the deferrable task holds a slot only for those edges).",
        "",
    ]


def _shards(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(not run)", ""]
    return _table(
        [
            "dag",
            "scripts",
            "max_map_length",
            "shards (capacity)",
            "run state",
            "mapped task states",
            "report summary",
            "error before launch",
        ],
        [
            [
                r["dag"],
                r["scripts"],
                r["max_map_length"],
                f"{r.get('shards', '-')} ({r.get('capacity', '-')})",
                r["state"],
                json.dumps(r["task_states"]),
                json.dumps(r.get("reported", "")),
                r.get("error_before_launch")
                if not r.get("discovery_error")
                else f"{r.get('error_before_launch')}: {r['discovery_error']}",
            ]
            for r in rows
        ],
    )


def _scale(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(not run)", ""]
    keys = [
        "scripts",
        "shards",
        "max_map_length",
        "discover_state",
        "discover_s",
        "mapped_instances",
        "all_expanded_after_s",
        "pods_left_after_stop",
    ]
    return [*_table(keys, [[r.get(k) for k in keys] for r in rows]), f"Note: {rows[0].get('note', '')}.", ""]


_PODSTART_LABELS = {
    "created_to_container": "pod taken by the node → `podman run` started",
    "container_to_entry": "`podman run` started → entrypoint's first instruction",
    "created_to_entry": "pod taken by the node → entrypoint's first instruction (container start)",
    "entry_total": "entrypoint's own part (first instruction → script started)",
    "script_start_to_first_line": "script started → its first line",
    "entry_to_first_line": "**entrypoint's first instruction → script's first line (goal 5)**",
    "created_to_first_line": "pod taken by the node → script's first line",
    "pod_cpu": "the container's CPU ms (cgroup; load-independent)",
}


def _podstart(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 15's goal 5: medians and p95 of each figure, then the entrypoint's phases."""
    if not rows:
        return ["(not run)", ""]
    out = []
    for r in rows:
        figures = r["figures"]
        out += [
            f"**{r.get('entrypoint', '')}** ({r.get('recorded', '')}): {r['scripts']} scripts, kubelet "
            f"{r['kubelet']} (image {r['image']}), {r['pods_measured']} pods measured, run {r['run_state']} "
            f"in {r['wall_s']} s, 1-minute load average {r['load_avg_1m']} (before, after).",
            "",
        ]
        keys = [k for k in _PODSTART_LABELS if k in figures]
        order = ["lib", "config", "auth", "fetch", "syntax", "marker", "needs", "secrets"]
        keys += [f"phase_{k}" for k in order if f"phase_{k}" in figures]
        out += _table(
            ["figure", "median ms", "p95 ms"],
            [
                [
                    _PODSTART_LABELS.get(k, "entrypoint phase: " + k.removeprefix("phase_")),
                    *figures[k].values(),
                ]
                for k in keys
            ],
        )
    return out


def _fullrun(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 15's goal 4: one full run's cost."""
    if not rows:
        return ["(not run)", ""]
    keys = [
        "scripts",
        "state",
        "task_states",
        "wall_s",
        "discover_s",
        "first_to_last_start_s",
        "report_s",
        "peak_running",
        "peak_deferred",
        "cpu_s",
        "report_bytes",
        "load_avg_1m",
        "wall_per_script_s",
        "scheduler_cpu_per_script_ms",
        "extrapolated_10000_h",
        "extra_tries",
    ]
    out = _table(
        keys, [[json.dumps(r.get(k)) if isinstance(r.get(k), dict) else r.get(k) for k in keys] for r in rows]
    )
    out += [f"{r.get('recorded', '')}: {r['note']}." for r in rows if r.get("note")]
    return [*out, ""]


def _issue26(folder: Path) -> list[str]:
    """Every recorded ``bench.issue26`` run (``issue26-*/``), oldest first."""
    from bench.issue26 import render as render_run

    out = [
        "## Issue 26: ours vs a bare KubernetesPodOperator DAG, alone on the machine (`bench.issue26`)",
        "",
        "100 trivial scripts, process kubelet, ours then the bare KPO DAG in one stack session per variant;",
        "each timed run waited for a 1-minute load below 2 (`quiet`: it did), nothing else ran on the",
        "machine. The goals, met or missed, are in the notes below. The sections after this one were",
        "taken under loads of 12-50: figures, not verdicts.",
        "",
    ]
    for run in sorted(p for p in folder.glob("issue26-*") if (p / "meta.json").exists()):
        out += [f"### {run.name}", "", render_run(run), ""]
    return out


def render(folder: Path) -> str:
    machine = json.loads((folder / "machine.json").read_text()) if (folder / "machine.json").exists() else {}
    out = [
        "# Benchmark results",
        "",
        "Recorded by `make bench` (`python -m bench.run`); raw numbers in `bench/results/*.json`;",
        "re-render with `python -m bench.render`. Comparisons were measured side by side in one run.",
        "",
        "Machine (at the latest `bench.run`): " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        "Sections 1-5 were recorded on 2026-11-25, before issue 15, on the same machine type; the",
        'subsections marked "after issue 15" on 2026-12-01 under a much heavier load (see the notes below).',
        "",
        *_issue26(folder),
        "## 1. DAG parse time vs scripts in the source",
        "",
        "warm = the file executed again with its imports loaded (what the dag-processor pays: it",
        "pre-imports); cold = a fresh interpreter with the Airflow SDK imported (paid by each task).",
        "",
        *_parse(_load(folder, "parse")),
        "### 1b. After issue 15: default shards vs the bare two-task mapped DAG, warm (`bench.parse15`)",
        "",
        *_rows(_load(folder, "issue15-parse")),
        "### 1c. Per phase of the mapped task instances, from their task logs (`bench.phases`)",
        "",
        *_rows(_load(folder, "issue15-phases")),
        "## 2. Discovery in the GCS emulator vs a bare listing of the same prefix",
        "",
        "warm = header cache hit (unchanged scripts: list + cache + validation); cold = every header read,",
        "at the given concurrency. Peak memory by tracemalloc; XCom bytes of the planned specs.",
        "",
        *_discovery(_load(folder, "discovery")),
        "### 2b. After issue 15: cold reads pooled vs through the storage client, interleaved",
        "",
        *_discovery(_load(folder, "issue15-discovery")),
        "## 3. End to end on the local stack: ours (one pod per script) vs the naive BashOperator DAG",
        "",
        *_compare([r for k in ("process", "podman", "preload") for r in _load(folder, f"compare-{k}")]),
        "### 3c. After issue 15: ours vs the bare KPO DAG",
        "",
        "Settings handed over, no ledger read on a first try, one ledger write, a shared model",
        "configuration in the pod; the preload variant also preloads the runner's modules.",
        "",
        "Each block is one stack session with ours and the bare KPO DAG run alternately (side by side).",
        "",
        *_compare(_load(folder, "issue15-compare")),
        "### 3d. One task's work around its pod, in process (`bench.hotpath`)",
        "",
        *_hotpath(_load(folder, "hotpath")),
        "### 3e. Issue 15's goal 1 re-run (`bench.compare15`)",
        "",
        "Same as 3c, recorded later on 2026-12-01 (03:30-04:30 UTC) beside other stacks and a test loop;",
        "each row carries the 1-minute load average before and after its run.",
        "",
        *_compare(_load(folder, "issue15-compare-2")),
        *(
            _rows(
                [
                    {
                        k: r.get(k)
                        for k in ("kubelet", "dag", "wall_s", "first_to_last_start_s", "load_avg_1m")
                    }
                    for r in _load(folder, "issue15-compare-2")
                ]
            )
            if _load(folder, "issue15-compare-2")
            else []
        ),
        "## 4. Deferrable vs sync",
        "",
        *_deferrable(_load(folder, "deferrable")),
        "## 5. Past max_map_length (scaled down)",
        "",
        *_shards(_load(folder, "shards")),
        "## 5b. Past max_map_length at full size (default Airflow settings)",
        "",
        *_scale(_load(folder, "scale")),
        "## 6. Issue 15's goal 5: pod start → the script's first line, podman kubelet (`bench.podstart`)",
        "",
        "Wall-clock ms on one host: the Kubernetes double's log (pod taken, `podman run` started), the",
        "entrypoint's `t_ms`/`phases_ms` stamps and the script's own first line (`EPOCHREALTIME`).",
        "",
        *_podstart(_load(folder, "issue15-podstart")),
        "## 7. One full run to completion (`bench.fullrun`; issue 15's and issue 26's goal 4)",
        "",
        "Process kubelet, deferrable, default settings, with the worker preload since 2026-12-05 (the row's",
        "`preload`), alone on the machine; peaks sampled every 2 s; CPU seconds from /proc",
        "(`self`: the process; `tree`: with its children, for the scheduler its executor's task processes).",
        "",
        *_fullrun(_load(folder, "issue15-fullrun")),
    ]
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():
        out += [notes.read_text()]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results"
    print(render(target))
