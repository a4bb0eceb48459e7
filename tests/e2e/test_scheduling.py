"""Issue 14 items 1-3 on the local stack: the trigger's params, after= dependencies, schedule= due-ness.

One manual run (as scheduled at a Monday 06:00 through ``due_at``) holds a chain whose first script fails, a
fan-in, a due and a not-due script, and a reference to an unknown script; a second run is a dry run with
``only`` and ``reason``. Real scheduler, KubernetesPodOperator and Kubernetes double. (Transitive skips at
run time and ``rerun`` from a conf are shown in unit tests and test_chores.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local import config as local_config
from local.airflow_client import AirflowClient
from tests.e2e.harness import RunResult, ScriptRunnerHarness

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPTS = Path(__file__).parent / "scripts" / "scheduling"
MONDAY_6 = "2026-12-07T06:00:00Z"


@pytest.fixture(scope="module")
def harness(stack: AirflowClient) -> ScriptRunnerHarness:
    return ScriptRunnerHarness(
        stack, bucket=local_config.BUCKET, kube_url=f"http://127.0.0.1:{local_config.PORTS.kube}"
    )


@pytest.fixture(scope="module")
def scheduled(harness: ScriptRunnerHarness) -> tuple[RunResult, str]:
    """The shared run: every script of scheduling/, as the scheduled run of Monday 06:00 would run them."""
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = harness.run_scripts(
        SCRIPTS, prefix="e2e-sched/", conf={"due_at": MONDAY_6, "reason": "e2e: as scheduled"}, timeout=240
    )
    return run, since


def _rows(run: RunResult) -> dict[str, dict[str, Any]]:
    report = run.report()
    return {r["path"]: r for r in [*report["scripts"], *report["rejected"]]}


def test_scheduling_failed_dependency_skips_its_dependents_without_a_pod(
    scheduled: tuple[RunResult, str], harness: ScriptRunnerHarness
) -> None:
    run, since = scheduled
    assert run.state == "failed"  # extract.sh failed and typo.sh was rejected
    tis = run.mapped_tasks()
    rows = _rows(run)
    assert tis["chain/extract.sh"]["state"] == "failed"
    assert tis["chain/load.sh"]["state"] == "skipped"
    assert (rows["chain/load.sh"]["status"], rows["chain/load.sh"]["reason"]) == (
        "skipped",
        "dependency chain/extract.sh failed",
    )
    assert harness.pods_created("chain/load.sh", since=since) == set()
    assert "E2E-SCHED load ran" not in run.log("chain/load.sh")
    # an unknown reference rejects its script (the others went on) and holds back its dependents
    assert rows["chain/typo.sh"]["status"] == "rejected"
    assert "after=chain/extrct.sh: no script of this source matches it" in rows["chain/typo.sh"]["reason"]
    assert (rows["chain/after_typo.sh"]["status"], rows["chain/after_typo.sh"]["reason"]) == (
        "skipped",
        "dependency chain/typo.sh was rejected",
    )
    assert "chain/after_typo.sh" not in tis


def test_scheduling_fan_in_waits_for_all_it_names_without_holding_a_slot(
    scheduled: tuple[RunResult, str],
) -> None:
    run, _ = scheduled
    tis = run.mapped_tasks()
    rows = _rows(run)
    assert {tis[f"fanin/{s}.sh"]["state"] for s in ("a", "b", "join")} == {"success"}
    assert rows["fanin/join.sh"]["started"] >= max(rows["fanin/a.sh"]["ended"], rows["fanin/b.sh"]["ended"])
    logs = "\n".join(run.logs("fanin/join.sh"))
    assert "status=waiting" in logs  # it was rescheduled (slot freed) while a.sh still ran
    assert "E2E-SCHED join ran" in logs
    assert rows["fanin/join.sh"]["attempts"] == 1  # waiting is not an attempt


def test_scheduling_only_the_due_scripts_run(scheduled: tuple[RunResult, str]) -> None:
    run, _ = scheduled
    rows = _rows(run)
    assert rows["sched/weekly.sh"]["status"] == "success"
    monthly = rows["sched/monthly.sh"]
    assert monthly["status"] == "not due"
    assert "next 2027-01-01T00:00:00Z" in monthly["reason"]
    assert "sched/monthly.sh" not in run.mapped_tasks()
    report = run.report()
    assert report["run"]["reason"] == "e2e: as scheduled"
    assert "as scheduled at 2026-12-07T06:00:00Z" in report["run"]["window"]


def test_scheduling_dry_run_with_only_and_reason_launches_no_pod_and_reports_the_order(
    scheduled: tuple[RunResult, str], harness: ScriptRunnerHarness
) -> None:
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conf = {"dry_run": True, "only": ["fanin/*"], "reason": "what would the fan-in do?"}
    run = harness.trigger(conf=conf, timeout=180)
    assert run.state == "success"  # the failing and rejected scripts are not part of this run (only)
    assert run.mapped_tasks() == {}
    rows = _rows(run)
    assert {p: (r["status"], r["reason"]) for p, r in rows.items()} == {
        "fanin/a.sh": ("dry run", "would run at level 0"),
        "fanin/b.sh": ("dry run", "would run at level 0"),
        "fanin/join.sh": ("dry run", "would run at level 1, after fanin/a.sh, fanin/b.sh"),
    }
    assert all(harness.pods_created(f"fanin/{s}.sh", since=since) == set() for s in ("a", "b", "join"))
    report = run.report()
    assert report["run"]["reason"] == "what would the fan-in do?"
    assert report["rejected"] == []
    markdown = run.report_markdown()
    assert "**Dry run**" in markdown
    assert "Reason: what would the fan-in do?" in markdown
    assert harness.pods_left() == []
