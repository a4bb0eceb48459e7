"""Issue 3's done-when: three scripts through the real scheduler, the real KPO and the Kubernetes double.

ok.sh succeeds with its output in the task log; fail3.sh fails with exit 3 after its one retry; invalid.sh is
rejected with its reason and never launched; the report lists all three; no pod is left behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPTS = Path(__file__).parent / "scripts" / "core"


@pytest.mark.parametrize("deferrable", [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")])
def test_core_path_success_failure_rejection(runner: Any, deferrable: bool) -> None:
    prefix = f"e2e-core-{'def' if deferrable else 'sync'}/"
    run = runner.run_scripts(SCRIPTS, prefix=prefix, settings={"deferrable": deferrable})

    assert run.state == "failed"  # the report task fails the run: a script failed and one was rejected
    tis = run.mapped_tasks()
    assert set(tis) == {"ok.sh", "fail3.sh"}  # invalid.sh was never launched
    assert tis["ok.sh"]["state"] == "success"
    assert tis["fail3.sh"]["state"] == "failed"
    # retries=1: two real attempts (the report's ledger count, below). Airflow's try number can be higher in
    # deferrable mode when the scheduler loses a deferred try (apache/airflow#67287); such a try runs no
    # script attempt and does not use up the script's retries.
    assert tis["fail3.sh"]["try_number"] >= 2

    ok_tries = tis["ok.sh"]["try_number"]
    ok_logs = run.logs("ok.sh")  # every try Airflow kept (a renumbered try has no record)
    assert ok_logs
    if not deferrable or ok_tries == 1:
        assert "E2E-OK-MARKER script=ok.sh" in ok_logs[-1]
    else:
        # Airflow lost a deferred try (apache/airflow#67287): that try's pod ran the script, but its logs
        # were never collected. The next try either ended at once on the run's success record (no pod)
        # or, when that record was not yet written, found the script's done marker in a new pod.
        assert (
            "E2E-OK-MARKER script=ok.sh" in "".join(ok_logs)
            or "already succeeded in this run" in ok_logs[-1]
            or "event=already-done" in ok_logs[-1]
        )
    if deferrable:
        # the script's second run is in some try Airflow kept (the race can renumber or drop one)
        assert "".join(run.logs("fail3.sh")).count("E2E-FAIL-MARKER try=") >= 1
    else:
        assert "E2E-FAIL-MARKER try=2" in run.log("fail3.sh", try_number=2)

    report = run.report()
    rows = {r["path"]: r for r in report["scripts"]}
    assert rows["ok.sh"]["status"] == "success"
    assert rows["fail3.sh"]["status"] == "failed"
    assert rows["fail3.sh"]["exit_code"] == 3
    assert rows["fail3.sh"]["attempts"] == 2
    assert [r["path"] for r in report["rejected"]] == ["invalid.sh"]
    assert "memory" in report["rejected"][0]["reason"]
    assert report["rejected"][0]["line"] == 2
    assert "E2E-INVALID-MARKER" not in json.dumps(report)

    assert runner.pods_left() == []
