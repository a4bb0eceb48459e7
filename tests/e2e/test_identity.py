"""Per-script identity on Composer 3 (impersonation) and per-script secrets, end to end on the local stack.

One DAG run with the ``composer3`` preset against the double's ``composer3`` admission profile: every pod
runs as the namespace's default service account (the environment's identity, ``composer-env``), and each
script's ``service_account=`` names a Google service account from the allowlist that the entrypoint
impersonates through the IAM front's emulated IAM Credentials API. ``a_own.sh`` (etl-a) reads team-a/, is
denied team-b/ and gets its own secret as a variable and a file; ``b_other_secret.sh`` (etl-b) asks for
etl-a's secret and fails the preflight with 77; ``c_not_allowed.sh`` (etl-c, allowlisted, but the
environment holds no token creator role on it) fails with 77 naming the account and the role. No secret
value appears in any task log or the report, although the scripts run with ``set -x``. Identities are bound
to folders (``identity_bindings``): ``team-a/own.sh`` gets etl-a and team-a's secret, while a hostile
``team-b/steal.sh`` naming the same account and secret is rejected by discovery before any pod exists.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import config as local_config
from local.kube_double.profiles import PROFILE_LABEL
from tests.e2e.harness import RunResult, ScriptRunnerHarness
from tests.e2e.test_presets import C3_NS, COMPOSER3, _label

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPTS = Path(__file__).parent / "scripts" / "identity"
PROJECT = "test-project"
EMAIL = {n: f"{n}@{PROJECT}.iam.gserviceaccount.com" for n in ("etl-a", "etl-b", "etl-c")}
SECRETS = f"projects/{PROJECT}/secrets/"
SETTINGS = {
    **COMPOSER3,
    "service_account_allowlist": dict(EMAIL),
    "secrets": {"team-a-password": f"{SECRETS}team-a-password"},
    "identity_bindings": {
        "team-a/": {"service_accounts": ["etl-a"], "secrets": [f"{SECRETS}team-a-"]},
        "team-b/": {"service_accounts": ["etl-b"], "secrets": [f"{SECRETS}team-b-"]},
        # The scripts at the root show what IAM itself refuses, so their bindings let them ask.
        "a_own.sh": {"service_accounts": ["etl-a"], "secrets": [f"{SECRETS}team-a-"]},
        "b_other_secret.sh": {"service_accounts": ["etl-b"], "secrets": [SECRETS]},
        "c_not_allowed.sh": {"service_accounts": ["etl-c"]},
    },
}
VALUES = ("E2E-SECRET-VALUE-A-5f2c9d", "E2E-SECRET-VALUE-B-81e0aa", "RTJFLVNFQ1JFVC1WQUxVRS1B")  # + base64


@pytest.fixture(scope="module")
def identity_run(stack: Any) -> Iterator[tuple[ScriptRunnerHarness, RunResult]]:
    runner = ScriptRunnerHarness(
        stack, bucket=local_config.BUCKET, kube_url=f"http://127.0.0.1:{local_config.PORTS.kube}"
    )
    bucket = runner.gcs.bucket(runner.bucket)
    for team in ("team-a", "team-b"):
        bucket.blob(f"{team}/input.txt").upload_from_string(f"data of {team}")
    _label(runner, C3_NS, {PROFILE_LABEL: "composer3"})
    try:
        yield runner, runner.run_scripts(SCRIPTS, prefix="e2e-identity/", settings=SETTINGS)
    finally:
        _label(runner, C3_NS, {PROFILE_LABEL: None})


def test_impersonated_script_reads_its_prefix_and_is_denied_anothers(
    identity_run: tuple[ScriptRunnerHarness, RunResult],
) -> None:
    _, run = identity_run
    assert run.mapped_tasks()["a_own.sh"]["state"] == "success"
    log = run.log("a_own.sh")
    assert "E2E-ID-A-READ=data of team-a" in log
    assert "E2E-ID-A-READ-B-EXIT=77" in log
    assert f"E2E-ID-IMPERSONATING={EMAIL['etl-a']}" in log
    assert f"event=identity script=a_own.sh impersonate={EMAIL['etl-a']}" in log


def test_a_script_the_environment_may_not_impersonate_fails_77_naming_account_and_role(
    identity_run: tuple[ScriptRunnerHarness, RunResult],
) -> None:
    _, run = identity_run
    assert run.mapped_tasks()["c_not_allowed.sh"]["state"] == "failed"
    log = run.log("c_not_allowed.sh")
    assert f"auth=impersonation-denied service_account={EMAIL['etl-c']} http=403" in log
    assert "roles/iam.serviceAccountTokenCreator" in log
    assert "E2E-ID-C-NEVER-RUNS" not in log
    row = {r["path"]: r for r in run.report()["scripts"]}["c_not_allowed.sh"]
    assert row["exit_code"] == 77


def test_secrets_are_per_script_and_never_shown(identity_run: tuple[ScriptRunnerHarness, RunResult]) -> None:
    runner, run = identity_run
    a_log = run.log("a_own.sh")
    assert "E2E-ID-SECRET-ENV-OK" in a_log
    assert "E2E-ID-SECRET-FILE-OK" in a_log
    assert (
        "secret=loaded name=projects/test-project/secrets/team-a-password/versions/latest env=TEAM_PASSWORD"
        in a_log
    )
    b_log = run.log("b_other_secret.sh")
    assert run.mapped_tasks()["b_other_secret.sh"]["state"] == "failed"
    assert (
        "secret=denied name=projects/test-project/secrets/team-a-password/versions/latest "
        f"identity={EMAIL['etl-b']} http=403"
    ) in b_log
    assert "roles/secretmanager.secretAccessor" in b_log
    assert "reason=secrets" in b_log
    assert "E2E-ID-B-NEVER-RUNS" not in b_log
    report = run.report()
    assert {r["path"]: r["exit_code"] for r in report["scripts"]}["b_other_secret.sh"] == 77
    seen = "\n".join([a_log, b_log, run.log("c_not_allowed.sh"), json.dumps(report), run.report_markdown()])
    for value in VALUES:
        assert value not in seen
    assert run.state == "failed"
    assert runner.pods_left() == []


def test_a_team_cannot_take_another_teams_identity_by_naming_it(
    identity_run: tuple[ScriptRunnerHarness, RunResult],
) -> None:
    """Issue 25: team-b/steal.sh names etl-a and team-a's secret; team-a/own.sh (the same asks) gets both."""
    runner, run = identity_run
    tasks = run.mapped_tasks()
    assert tasks["team-a/own.sh"]["state"] == "success"
    own = run.log("team-a/own.sh")
    assert "E2E-ID-TEAM-A-SECRET-OK" in own
    assert f"E2E-ID-TEAM-A-AS={EMAIL['etl-a']}" in own
    assert "team-b/steal.sh" not in tasks  # rejected by discovery: never a task, never a pod
    row = {r["path"]: r for r in run.report()["rejected"]}["team-b/steal.sh"]
    assert row["status"] == "rejected"
    assert "service_account=etl-a: this script's folder may not use it" in row["reason"]
    assert "identity_bindings" in row["fix"]
    assert "E2E-ID-STOLEN" not in run.report_markdown()
    assert not [p for p in runner.double_state()["pods"] if "steal" in p["name"]]
