"""The stack's orchestration: what a stuck test says about the stack."""

from __future__ import annotations

from local import stack


def test_a_stuck_tests_diagnosis_keeps_the_stacks_errors_not_the_tasks() -> None:
    """The scheduler's log carries the task output too: a task's errors are its own, in its task log."""
    log_text = [
        "2026-12-01 [info     ] starting",
        "2026-12-01 [error    ] Container 'base': exit_code=3 [airflow.task.operators] task_id=run_scripts",
        "2026-12-01 [error    ] Task failed with exception     [task] dag_id=d",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "airflow.sdk.api.client.ServerResponseError: Server returned error",
        "2026-12-01 [error    ] Workload execution failed.     [airflow.executors.local_executor]",
        "Traceback (most recent call last):",
        '  File "triggerer_job_runner.py", line 9, in run',
        "OSError: [Errno 98] Address already in use",
    ]
    assert stack._error_lines(log_text) == [
        "2026-12-01 [error    ] Workload execution failed.     [airflow.executors.local_executor]",
        "Traceback: OSError: [Errno 98] Address already in use",
    ]
