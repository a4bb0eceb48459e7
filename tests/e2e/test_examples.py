"""The example run (what `make demo` shows) on the local stack with the real scheduler."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local import demo
from local import stack as local_stack
from tests.e2e.harness import ScriptRunnerHarness


def _row(script: str, rest: str) -> re.Pattern[str]:
    """A report row: the script (a link to its task log when the UI URL is known), then the cells."""
    return re.compile(rf"\| \[?{re.escape(script)}(\]\([^)]*\))? \| {rest}")


def test_examples_run_in_parallel_and_end_as_documented(
    stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo.run_demo(stack, timeout=300)
    out = capsys.readouterr().out
    assert code == 0, out
    assert _row("bad_directive.sh", "rejected").search(out), out
    assert _row("flaky_exit3.sh", r"failed \| 2 \|").search(out), out
    assert _row("hello.sh", "success").search(out), out
    assert "/tasks/run_scripts/mapped/" in out  # rows link to their task logs
    assert "peak parallelism:" in out
    # The bucket is laid out like Composer's: the DAG under dags/, the scripts under data/.
    runner = ScriptRunnerHarness(
        stack, bucket=local_stack.BUCKET, kube_url=f"http://127.0.0.1:{local_stack.PORTS.kube}"
    )
    names = {b.name for b in runner.gcs.list_blobs(local_stack.BUCKET, prefix="dags/")}
    assert {"dags/gcs_script_runner.py", "dags/.airflowignore", "dags/script_runner/dag.py"} <= names
    assert runner.pods_left() == []
    assert runner.processes_left() == []
