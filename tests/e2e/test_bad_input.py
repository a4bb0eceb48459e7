"""Bad input never loses a run: invalid settings fail discovery with the fix, and the report is still written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).parent / "scripts" / "core"


def test_bad_settings_fail_before_launch_with_the_fix_and_still_report(runner: Any) -> None:
    run = runner.run_scripts(SCRIPTS, prefix="e2e-bad-settings/", settings={"max_cpu": "banana"})
    assert run.state == "failed"
    tis = {t["task_id"]: t for t in run.task_instances()}
    assert tis["discover"]["state"] == "failed"
    assert run.mapped_tasks() == {}  # nothing launched
    log = run.runner.stack.task_log("gcs_script_runner", run.run_id, "discover", -1, 1)
    assert "max_cpu" in log
    assert "banana" in log
    # The Variable is unusable, so the report goes where the preset and environment point.
    blob = runner.gcs.bucket(runner.bucket).blob(f"script-runner/reports/{run.run_id}.json")
    report = json.loads(blob.download_as_bytes())
    assert report["summary"]["discovery"].startswith("failed")
    assert "max_cpu" in report["summary"]["settings"]
    assert runner.pods_left() == []
