"""bench.issue26's tables: wall times, and CPU per script by part of the stack when recorded."""

from __future__ import annotations

import json
from pathlib import Path

from bench.issue26 import render

ROOT = Path(__file__).resolve().parents[3]


def _row(dag: str, wall: float, cpu: dict[str, float] | None) -> dict[str, object]:
    row: dict[str, object] = {
        "variant": "preload-sync",
        "dag": dag,
        "wall_s": wall,
        "tasks": 100,
        "median_task_s": 1.0,
        "first_to_last_start_s": 10.0,
        "task_states": {"success": 100},
        "load_at_start": 0.5,
        "quiet": True,
    }
    if cpu is not None:
        row["cpu_s"] = cpu
    return row


def _folder(tmp_path: Path, with_cpu: bool) -> Path:
    meta = {"commit": "abc1234", "dags_changed_at": "abc1234", "started": "s", "ended": "e", "cores": 2}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    ours = {"airflow": 35.0, "pods": 14.0, "kube_api": 2.0, "google": 0.8, "machine": 51.0}
    bare = {"airflow": 28.0, "pods": 4.0, "kube_api": 1.0, "google": 0.0, "machine": 32.0}
    rows = [
        _row("gcs_script_runner", 31.7, ours if with_cpu else None),
        _row("bare_kpo_pods", 20.1, bare if with_cpu else None),
    ]
    (tmp_path / "compare.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_render_shows_the_airflow_side_cpu_ratio_apart_from_the_pods(tmp_path: Path) -> None:
    text = render(_folder(tmp_path, with_cpu=True))
    assert "| preload-sync | 31.7 | 20.1 | **1.58x**" in text
    assert (
        "| preload-sync | 0.350 / 0.280 | **1.25x** | 0.140 / 0.040 | 0.020 / 0.010 | 0.510 / 0.320 |" in text
    )


def test_render_of_a_run_recorded_before_the_cpu_split_has_no_cpu_table(tmp_path: Path) -> None:
    assert "CPU seconds per script" not in render(_folder(tmp_path, with_cpu=False))
    recorded = ROOT / "bench" / "results" / "issue26-20261205T0833"
    assert "**1.60x**" in render(recorded)


def test_render_splits_the_airflow_side_by_process_when_recorded(tmp_path: Path) -> None:
    folder = _folder(tmp_path, with_cpu=True)
    rows = [json.loads(line) for line in (folder / "compare.jsonl").read_text().splitlines()]
    rows[0]["cpu_s"].update({"airflow:scheduler": 25.0, "airflow:api-server": 10.0})
    rows[1]["cpu_s"].update({"airflow:scheduler": 20.0, "airflow:api-server": 8.0})
    (folder / "compare.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = render(folder)
    assert "| variant | api-server | scheduler |" in text
    assert "| preload-sync | 100 / 80 | 250 / 200 |" in text
    assert "Airflow side's CPU" not in render(_folder(_mkdir(tmp_path / "old"), with_cpu=True))


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def test_render_of_repeats_gives_the_median_of_each_dag_and_every_repeats_ratio(tmp_path: Path) -> None:
    meta = {"commit": "c", "dags_changed_at": "c", "started": "s", "ended": "e", "cores": 2, "repeats": 3}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    walls = [(26.8, 25.2), (30.0, 20.0), (24.0, 21.0)]
    rows = []
    for index, (ours, bare) in enumerate(walls):
        for dag, wall in (("gcs_script_runner", ours), ("bare_kpo_pods", bare)):
            row = _row(
                dag, wall, {"airflow": wall, "pods": 1.0, "kube_api": 1.0, "google": 0.0, "machine": wall}
            )
            rows.append({**row, "repeat": index})
    (tmp_path / "compare.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    phases = [
        {"variant": "preload-sync", "dag": r["dag"], "phases": {k: r["wall_s"] for k in PHASE_KEYS}}
        for r in rows
    ]
    (tmp_path / "phases.jsonl").write_text("".join(json.dumps(p) + "\n" for p in phases))
    text = render(tmp_path)
    assert "median of 3 alternating runs" in text
    # medians 26.8 and 21.0 (not the first pair's 26.8 / 25.2), each repeat's own ratio beside them
    assert "| preload-sync | 26.8 | 21.0 | **1.28x** |" in text
    assert "| 1.06, 1.50, 1.14 |" in text
    assert '{"success": 300}' in text
    assert "| preload-sync | 0.268 / 0.210 | **1.28x** |" in text
    assert "| preload-sync | bare KPO | 21.0 | 21.0 |" in text


PHASE_KEYS = ("parse_s", "pre_execute_s", "to_pod_s", "pod_s", "after_pod_s", "total_s")
