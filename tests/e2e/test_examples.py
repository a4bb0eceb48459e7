"""The example run (what `make demo` shows) on the local stack with the real scheduler."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local import config as local_config
from local import demo
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
        stack, bucket=local_config.BUCKET, kube_url=f"http://127.0.0.1:{local_config.PORTS.kube}"
    )
    names = {b.name for b in runner.gcs.list_blobs(local_config.BUCKET, prefix="dags/")}
    assert {"dags/gcs_script_runner.py", "dags/.airflowignore", "dags/script_runner/dag.py"} <= names
    _assert_sizing_and_html(runner, out)
    assert runner.pods_left() == []
    assert runner.processes_left() == []


def _assert_sizing_and_html(runner: ScriptRunnerHarness, out: str) -> None:
    """Each script's CPU time (and, in containers, peak memory from its cgroup) is in the report, with a
    sizing suggestion, the usage history, and the HTML page with one timeline bar per attempt."""
    found = re.search(r"reports/(\S+)\.json \(and", out)
    assert found, out
    run_id = found.group(1)
    report = demo.read_report(run_id)
    rows = {r["path"]: r for r in report["scripts"]}
    hello = rows["hello.sh"]
    assert hello["cpu_secs"] is not None
    assert hello["cpu_secs"] > 0
    if runner.double_state().get("kubelet_mode") == "podman":
        # Real cgroup figures from inside each container, and a suggestion from them.
        assert {r["usage"] for r in rows.values() if r["status"] == "success"} == {"cgroup"}, rows
        assert 1024**2 < hello["mem_peak_bytes"] < 512 * 1024**2
        assert hello["suggestion"]["directive"].startswith("memory="), hello
        assert re.match(
            r"asked memory=512Mi, peak \d+Mi over the last \d+ runs? → memory=", hello["suggestion"]["reason"]
        )
        assert "Sizing suggestions" in out
        assert re.search(r"hello\.sh.*\| 500m / (\d+m|[\d.]+) \| 512Mi / \d+Mi \|", out), out
    else:  # the process kubelet shares the machine's cgroup: CPU from rusage, no peak memory claimed
        assert hello["usage"] == "rusage"
        assert hello["mem_peak_bytes"] is None
    bucket = runner.gcs.bucket(local_config.BUCKET)
    history = json.loads(bucket.blob("script-runner/sizing/history.json").download_as_bytes())
    assert run_id in {e["run_id"] for e in history["scripts"]["hello.sh"]}
    page = bucket.blob(f"script-runner/reports/{run_id}.html").download_as_text()
    attempts = sum(len(r["tries"]) for r in report["scripts"])
    assert attempts >= len(rows)
    assert len(re.findall(r'<rect class="bar status-', page)) == attempts
    assert 'class="bar status-failed"' in page  # flaky_exit3.sh
    assert "bad_directive.sh" in page.split("Rejected scripts")[1]
