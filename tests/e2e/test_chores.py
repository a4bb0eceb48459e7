"""Issue 5 on the local stack: restart state, done-markers, and the report listing all of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).parent / "scripts" / "chores"


def test_chores_killed_script_resumes_at_its_first_unfinished_step(runner: Any) -> None:
    run = runner.run_scripts(SCRIPTS / "resume", prefix="e2e-chores-resume/")
    ti = run.mapped_tasks()["steps.sh"]
    assert ti["state"] == "success"
    assert ti["try_number"] == 2

    first = run.log("steps.sh", try_number=1)
    assert "E2E-STEP extract ran try=1" in first
    assert "E2E-STEP load started try=1" in first
    assert "E2E-STEP load finished" not in first

    second = run.log("steps.sh", try_number=2)
    assert "E2E-STEP extract ran" not in second
    assert "step=extract status=skipped reason=done-earlier" in second
    assert "E2E-STEP load started try=2" in second
    assert "step=load status=done" in second
    assert "E2E-STEP publish ran try=2" in second

    row = {r["path"]: r for r in run.report()["scripts"]}["steps.sh"]
    assert row["history"] == ["failed(143)", "success(0)"]
    assert runner.pods_left() == []


def test_chores_done_marker_skips_the_second_run_and_rerun_forces_it(runner: Any) -> None:
    first = runner.run_scripts(SCRIPTS / "done", prefix="e2e-chores-done/")
    assert first.mapped_tasks()["daily.sh"]["state"] == "success"

    second = runner.trigger()
    assert second.state == "success"  # a skipped script is not a problem
    assert second.mapped_tasks()["daily.sh"]["state"] == "skipped"
    assert "reason=done-marker" in second.log("daily.sh")
    assert "E2E-DAILY ran" not in second.log("daily.sh")
    row = {r["path"]: r for r in second.report()["scripts"]}["daily.sh"]
    assert row["status"] == "skipped"
    assert "done-marker" in row["reason"]

    third = runner.trigger(conf={"rerun": True})
    assert third.mapped_tasks()["daily.sh"]["state"] == "success"
    assert "E2E-DAILY ran" in third.log("daily.sh")
    assert runner.pods_left() == []


def test_chores_missing_permission_fails_before_the_work_and_identities_are_isolated(runner: Any) -> None:
    run = runner.run_scripts(SCRIPTS / "iam", prefix="e2e-chores-iam/")
    tis = run.mapped_tasks()
    rows = {r["path"]: r for r in run.report()["scripts"]}

    assert tis["denied.sh"]["state"] == "failed"
    assert tis["denied.sh"]["try_number"] == 1  # fatal: retries=2 not spent
    log = run.log("denied.sh")
    assert "require=denied identity=reader@test-project.iam.gserviceaccount.com" in log
    assert "resource=gs://composer-bucket-out missing=storage.objects.create,storage.objects.delete" in log
    assert "grant roles/storage.objectUser on gs://composer-bucket-out" in log
    assert "E2E-IAM work started" not in log
    assert rows["denied.sh"]["exit_code"] == 77

    assert tis["allowed.sh"]["state"] == "success"
    allowed = run.log("allowed.sh")
    assert "E2E-IAM-ALLOWED wrote as writer@test-project.iam.gserviceaccount.com" in allowed
    assert "E2E-IAM-LS gs://composer-bucket-out/reports/e2e-iam/" in allowed
    assert "E2E-IAM-GSUTIL gs://composer-bucket-out/reports/e2e-iam/" in allowed

    assert tis["isolated.sh"]["state"] == "success"
    assert "E2E-IAM-ISOLATED put exit=" in run.log("isolated.sh")
    assert "E2E-IAM-ISOLATED put exit=0" not in run.log("isolated.sh")
    assert (
        runner.gcs.bucket("composer-bucket-out").blob("reports/e2e-iam/should-not-exist.txt").exists()
        is False
    )
    assert runner.pods_left() == []
