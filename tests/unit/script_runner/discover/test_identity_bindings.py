"""Identities bound to folders (issue 25): a header cannot choose an identity its folder is not given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from script_runner.cli.main import main
from script_runner.config.settings_loader import load_settings
from script_runner.discover.discovery import plan_scripts
from script_runner.discover.spec import Rejected, ScriptObject

EMAIL = {n: f"{n}@p.iam.gserviceaccount.com" for n in ("etl-a", "etl-b")}
BINDINGS = {
    "team-a/": {"service_accounts": ["etl-a"], "secrets": ["projects/p/secrets/team-a-"]},
    "team-b/": {"service_accounts": ["etl-b"], "secrets": ["projects/p/secrets/team-b-"]},
}
STEAL = "\n# runner: service_account=etl-a secret=projects/p/secrets/team-a-password:PW"


def settings(**variable: Any):  # type: ignore[no-untyped-def]
    return load_settings(
        variable={"service_account_allowlist": dict(EMAIL), **variable},
        environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_IMAGE": "img", "SCRIPT_RUNNER_PRESET": "composer3"},
    )


def plan(headers: dict[str, str], s: Any) -> tuple[dict[str, dict[str, Any]], dict[str, Rejected]]:
    objects = [ScriptObject(path=p, uri=f"gs://b/data/{p}") for p in headers]
    specs, rejected, _ = plan_scripts(objects, dict(headers), s)
    return {x["path"]: x for x in specs}, {r.path: r for r in rejected}


def test_identity_bindings_keep_a_team_from_naming_anothers_account_with_the_same_header() -> None:
    # The same header text in both folders: discovery's per-header memo must not hand team-a's verdict on.
    specs, rejected = plan(
        {"team-a/job.sh": STEAL, "team-b/steal.sh": STEAL}, settings(identity_bindings=BINDINGS)
    )
    assert specs["team-a/job.sh"]["impersonate"] == EMAIL["etl-a"]
    why = rejected["team-b/steal.sh"]
    assert "service_account=etl-a: this script's folder may not use it" in why.reason
    assert "identity_bindings allows it here: etl-b" in why.reason
    assert "identity_bindings" in why.fix
    assert '"team-b/"' in why.fix


def test_identity_bindings_refuse_another_teams_secret_under_the_scripts_own_identity() -> None:
    header = "\n# runner: service_account=etl-b secret=projects/p/secrets/team-a-password:PW"
    specs, rejected = plan({"team-b/x.sh": header}, settings(identity_bindings=BINDINGS))
    assert not specs
    assert "secret=projects/p/secrets/team-a-password: this script's folder may not read" in (
        rejected["team-b/x.sh"].reason
    )


def test_identity_bindings_unset_refuse_every_service_account_with_a_migration_fix() -> None:
    specs, rejected = plan({"team-a/job.sh": STEAL, "plain.sh": ""}, settings())
    assert list(specs) == ["plain.sh"]
    why = rejected["team-a/job.sh"]
    assert "identity_bindings is not set" in why.reason
    assert '{"team-a/": {"service_accounts": ["etl-a"]}}' in why.fix


def test_identity_bindings_globs_and_the_email_form_both_bind() -> None:
    s = settings(identity_bindings={"team-a/*.sh": {"service_accounts": [EMAIL["etl-a"]]}})
    specs, rejected = plan({"team-a/x.sh": "\n# runner: service_account=etl-a", "x.sh": STEAL}, s)
    assert specs["team-a/x.sh"]["impersonate"] == EMAIL["etl-a"]
    assert "x.sh" in rejected


def test_cli_lint_says_which_identity_a_script_gets_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for team in ("team-a", "team-b"):
        (tmp_path / team).mkdir()
        (tmp_path / team / "job.sh").write_text(f"#!/bin/bash{STEAL}\necho\n")
    variable = json.dumps({"service_account_allowlist": EMAIL, "identity_bindings": BINDINGS})
    code = main(["--preset", "composer3", "--settings", variable, "lint", "--no-shellcheck", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"identity: impersonates {EMAIL['etl-a']} (identity_bindings 'team-a/' allows it here)" in out
    assert (
        "secret: projects/p/secrets/team-a-password/versions/latest -> $PW (identity_bindings 'team-a/'"
        in out
    )
    assert f"{tmp_path}/team-b/job.sh:2: service_account=etl-a: this script's folder may not use it" in out
