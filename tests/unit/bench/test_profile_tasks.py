"""bench.profile_tasks: py-spy's collapsed stacks of the task processes, summed per row, per task."""

from __future__ import annotations

from pathlib import Path

from bench.profile_tasks import RATE, summarize, table

TASK = (
    'process 1:"airflow scheduler";process 2:"airflow worker -- 01a2";<module> (airflow:6);'
    "main (airflow/sdk/execution_time/task_runner.py:2442)"
)


def test_summarize_counts_task_process_samples_per_row_and_task(tmp_path: Path) -> None:
    raw = tmp_path / "ours.txt"
    raw.write_text(
        f"{TASK};KubernetesPodOperator.execute_sync (kubernetes/operators/pod.py:850);"
        "KubernetesPodOperator.get_or_create_pod (kubernetes/operators/pod.py:781);safe_dump (yaml/__init__.py:269) 40\n"
        f"{TASK};KubernetesPodOperator.execute_sync (kubernetes/operators/pod.py:850);"
        "KubernetesPodOperator.find_pod (kubernetes/operators/pod.py:675) 20\n"
        # the supervisor's own samples are not the task's
        'process 1:"airflow scheduler";supervise_task (airflow/sdk/execution_time/supervisor.py:2648) 500\n'
        "malformed line\n"
    )
    got = summarize(raw, tasks=2)
    assert got["task process (all)"] == 60 / RATE / 2
    assert got["KPO execute_sync"] == 60 / RATE / 2
    assert got["    KPO's debug YAML of the request"] == 40 / RATE / 2
    assert got["  find_pod"] == 20 / RATE / 2
    assert got["parse of the DAG file"] == 0
    rendered = table({"ours": got, "bare": {k: 0.0 for k in got}})
    assert "| KPO execute_sync | 0.150 | 0.000 | +0.150 |" in rendered
