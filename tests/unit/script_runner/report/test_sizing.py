from __future__ import annotations

from typing import Any

import pytest

from script_runner.report.build import build_report, to_markdown
from script_runner.report.sizing import KEEP_RUNS, SizingHistory, apply_sizing, run_entry, suggest

MI = 1024**2


def runs(*peaks_mi: int, cores: float = 0.2, oom: bool = False) -> list[dict[str, Any]]:
    return [
        {"run_id": f"r{i}", "mem_peak_bytes": p * MI, "avg_cores": cores, "oom": oom}
        for i, p in enumerate(peaks_mi)
    ]


def test_sizing_suggests_less_memory_when_the_ask_is_far_above_the_peak() -> None:
    hint = suggest(runs(250, 310, 280, 300, 290), memory="2Gi", cpu="250m")
    assert hint is not None
    assert hint.directive == "memory=512Mi"
    assert hint.reason == "asked memory=2Gi, peak 310Mi over the last 5 runs → memory=512Mi"


@pytest.mark.parametrize(
    ("peaks", "memory", "expected"),
    [
        pytest.param([300], "512Mi", None, id="fits"),
        pytest.param([250], "256Mi", None, id="a peak near the ask is no shortage (page cache counts)"),
        pytest.param([10], "96Mi", None, id="an ask under twice the 64Mi floor"),
        pytest.param([10], "256Mi", "memory=64Mi", id="tiny script, big ask"),
        pytest.param([3000, 100, 100, 100, 100, 100], "1Gi", "memory=256Mi", id="only the last 5 runs count"),
    ],
)
def test_sizing_memory_rule(peaks: list[int], memory: str, expected: str | None) -> None:
    hint = suggest(runs(*peaks), memory=memory, cpu="250m")
    assert (hint.directive if hint else None) == expected


def test_sizing_after_an_oom_suggests_twice_the_ask() -> None:
    hint = suggest([{"run_id": "r", "oom": True}], memory="256Mi", cpu="250m")
    assert hint is not None
    assert hint.directive == "memory=512Mi"
    assert "OOMKilled over the last 1 run" in hint.reason


def test_sizing_cpu_rule_suggests_a_step_when_far_off_either_way() -> None:
    idle = suggest(runs(100, cores=0.05), memory="256Mi", cpu="2")
    assert idle is not None
    assert idle.directive == "cpu=100m"
    assert "asked cpu=2, used 50m on average over the last 1 run → cpu=100m" in idle.reason
    busy = suggest(runs(100, cores=0.98), memory="256Mi", cpu="1")
    assert busy is not None
    assert busy.directive == "cpu=2"
    assert suggest(runs(100, cores=0.3), memory="256Mi", cpu="500m") is None


def test_sizing_says_nothing_without_history() -> None:
    assert suggest([], memory="2Gi", cpu="4") is None
    assert suggest([{"run_id": "r", "oom": False}], memory="2Gi", cpu="4") is None


def test_sizing_run_entry_takes_the_highest_peak_and_the_busiest_attempt() -> None:
    tries = [
        {"status": "failed", "secs": 12, "entry_secs": 10, "cpu_secs": 5.0, "mem_peak_bytes": 100 * MI},
        {"status": "success", "secs": 6, "entry_secs": 4, "cpu_secs": 1.0, "mem_peak_bytes": 50 * MI},
    ]
    tries = [{**t, "end_reason": "script-failed" if t["status"] == "failed" else "ok"} for t in tries]
    entry = run_entry({"memory": "1Gi", "cpu": "1", "status": "success"}, tries, "r1")
    assert entry is not None
    assert entry["mem_peak_bytes"] == 100 * MI
    assert entry["avg_cores"] == 0.5
    assert entry["cpu_secs"] == 6.0
    assert run_entry({}, [{"status": "failed"}], "r1") is None  # no figures, no OOM: nothing to learn
    assert run_entry({}, [{"status": "oom_killed"}], "r1") == {
        "run_id": "r1",
        "ended": "",
        "memory": "",
        "cpu": "",
        "status": "",
        "oom": True,
    }


def test_sizing_history_in_the_emulator_keeps_the_last_runs_and_replaces_a_rerun_report(
    gcs_client: Any, make_bucket: Any
) -> None:
    bucket = make_bucket({})
    history = SizingHistory(gcs_client, bucket=bucket.name, root="script-runner")
    assert history.read() == {}
    for i in range(KEEP_RUNS + 2):
        history.add({"a.sh": {"run_id": f"r{i}", "mem_peak_bytes": i}})
    history.add({"a.sh": {"run_id": f"r{KEEP_RUNS + 1}", "mem_peak_bytes": 999}})  # the report retried
    kept = history.read()["a.sh"]
    assert len(kept) == KEEP_RUNS
    assert kept[0]["run_id"] == "r2"
    assert kept[-1] == {"run_id": f"r{KEEP_RUNS + 1}", "mem_peak_bytes": 999}
    assert bucket.blob("script-runner/sizing/history.json").exists()


def test_sizing_report_rows_show_usage_and_get_a_suggestion_from_history(
    gcs_client: Any, make_bucket: Any
) -> None:
    bucket = make_bucket({})
    history = SizingHistory(gcs_client, bucket=bucket.name, root="script-runner")
    for i in range(4):
        history.add({"big.sh": {"run_id": f"old{i}", "mem_peak_bytes": 300 * MI, "avg_cores": 0.1}})
    attempts = {
        "big.sh": [
            {
                "status": "success",
                "exit_code": 0,
                "secs": 10,
                "cpu_secs": 0.8,
                "mem_peak_bytes": 310 * MI,
                "usage": "cgroup",
                "end_reason": "ok",
                "entry_secs": 8,
                "started": "2026-11-30T10:00:00+00:00",
                "ended": "2026-11-30T10:00:10+00:00",
            }
        ],
        "ok.sh": [
            {
                "status": "success",
                "exit_code": 0,
                "secs": 10,
                "cpu_secs": 2.0,
                "mem_peak_bytes": 200 * MI,
                "end_reason": "ok",
                "entry_secs": 10,
            }
        ],
    }
    report = build_report(
        dag_id="d",
        run_id="now",
        source="gs://b/data/",
        shards=[
            [
                {"path": "big.sh", "memory": "2Gi", "cpu": "250m"},
                {"path": "ok.sh", "memory": "256Mi", "cpu": "250m"},
            ]
        ],
        rejected=[],
        attempts=attempts,
        states={},
    )
    apply_sizing(report, attempts, history)
    rows = {r["path"]: r for r in report["scripts"]}
    assert rows["big.sh"]["mem_peak_bytes"] == 310 * MI
    assert rows["big.sh"]["cpu_secs"] == 0.8
    assert rows["big.sh"]["usage"] == "cgroup"
    assert rows["big.sh"]["suggestion"] == {
        "directive": "memory=512Mi",
        "reason": "asked memory=2Gi, peak 310Mi over the last 5 runs → memory=512Mi",
    }
    assert "suggestion" not in rows["ok.sh"]
    markdown = to_markdown(report)
    assert "| 250m / 100m | 2Gi / 310Mi |" in markdown
    assert "- big.sh: `# runner: memory=512Mi` (asked memory=2Gi, peak 310Mi over the last 5 runs" in markdown
    assert len(history.read()["big.sh"]) == 5


def test_sizing_on_composer3_never_suggests_less_than_the_platform_gives() -> None:
    from script_runner.config.settings_loader import load_settings
    from script_runner.report.sizing import platform_bend

    composer3 = platform_bend(load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "composer3"}))
    assert composer3 is not None
    assert platform_bend(load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "local"})) is None
    tiny = runs(5, cores=0.01)
    # What the demo's hello.sh got locally: memory=64Mi cpu=100m; on Composer 3 the pod gets 512Mi/250m anyway.
    assert suggest(tiny, memory="512Mi", cpu="500m", bend=composer3) is None
    bent = suggest(tiny, memory="4Gi", cpu="2", bend=composer3)
    assert bent is not None
    assert bent.directive == "memory=512Mi cpu=250m"


def test_sizing_learns_only_from_attempts_that_ran_the_script_over_its_own_duration() -> None:
    """Issue 25: five done-marker skips told a script that peaks at 3 GiB memory=64Mi; CPU was divided by
    the attempt's wall time, pod start included, so a busy script looked idle."""
    skip = {"status": "skipped", "secs": 20, "cpu_secs": 0.01, "mem_peak_bytes": 5 * MI}
    skips = [{**skip, "end_reason": "skipped-done-marker", "entry_secs": 0}]
    auth = [
        {"status": "failed", "secs": 30, "cpu_secs": 0.02, "mem_peak_bytes": 6 * MI, "end_reason": "auth"}
    ]
    history = [e for t in (skips, skips, auth, skips, skips) if (e := run_entry({}, t, "r")) is not None]
    assert history == []  # nothing learned from scripts that never ran
    real = {"status": "success", "secs": 100, "entry_secs": 10, "cpu_secs": 9.5, "end_reason": "ok"}
    entry = run_entry({"memory": "4Gi", "cpu": "1"}, [{**real, "mem_peak_bytes": 3 * 1024 * MI}], "r")
    assert entry is not None
    assert entry["avg_cores"] == 0.95  # 9.5 CPU seconds over the script's 10 s, not the pod's 100 s
    hint = suggest([entry], memory="4Gi", cpu="1")
    assert hint is not None
    assert hint.directive == "cpu=2"  # busy, not idle: more cpu, and memory left alone
    report = build_report(
        dag_id="d",
        run_id="r",
        source="gs://b/data/",
        shards=[[{"path": "busy.sh", "memory": "4Gi", "cpu": "1"}]],
        rejected=[],
        attempts={"busy.sh": [real]},
        states={},
    )
    assert "| 1 / 950m |" in to_markdown(report)  # cores asked / cores used
