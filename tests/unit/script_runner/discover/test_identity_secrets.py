"""Per-script identity by impersonation (identity_mode) and secret= directives, up to the pod spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from script_runner.cli.main import main
from script_runner.config.settings_loader import load_settings
from script_runner.discover.directives import parse_directives
from script_runner.discover.resolve import resolve, resolve_all
from script_runner.discover.spec import ScriptObject, ScriptSpec, spec_to_xcom
from script_runner.exceptions import DirectiveError, SettingsError
from script_runner.run import pod_spec

OBJ = ScriptObject(path="etl/load.sh", uri="gs://b/data/etl/load.sh", generation="7", md5="x")
ENV = {"GCS_BUCKET": "b", "SCRIPT_RUNNER_IMAGE": "img"}
EMAIL_A = "etl-a@p.iam.gserviceaccount.com"
SECRET = "projects/p/secrets/warehouse-password/versions/latest"


BIND_ALL = {"*": {"service_accounts": ["etl-a"], "secrets": ["projects/"]}}


def settings(preset: str = "composer3", **variable: object):  # type: ignore[no-untyped-def]
    if "service_account_allowlist" in variable and preset == "composer3":
        variable.setdefault("identity_bindings", BIND_ALL)
    return load_settings(variable=dict(variable), environ={**ENV, "SCRIPT_RUNNER_PRESET": preset})


def plan(header: str, s=None) -> ScriptSpec:  # type: ignore[no-untyped-def]
    return resolve(OBJ, parse_directives(OBJ.path, header), s or settings())


def test_identity_mode_defaults_to_impersonate_on_composer3_only() -> None:
    assert settings().identity_mode == "impersonate"
    assert {settings(p).identity_mode for p in ("composer2", "gke", "local")} == {"ksa"}


@pytest.mark.parametrize(
    "allowlist",
    [
        pytest.param({"etl-a": EMAIL_A}, id="map"),
        pytest.param([EMAIL_A], id="list-of-emails"),
    ],
)
def test_impersonation_resolves_short_name_and_email_to_the_email(allowlist: object) -> None:
    s = settings(service_account_allowlist=allowlist)
    for name in ("etl-a", EMAIL_A):
        spec = plan(f"# runner: service_account={name}", s)
        assert spec.impersonate == EMAIL_A
        assert spec.service_account is None


def test_impersonation_refuses_a_name_outside_the_allowlist_naming_the_allowed() -> None:
    s = settings(service_account_allowlist={"etl-a": EMAIL_A})
    with pytest.raises(DirectiveError) as err:
        plan("# runner: service_account=etl-b", s)
    assert "'etl-b' is not allowed to be impersonated (allowed: etl-a)" in err.value.message
    assert "service_account_allowlist" in err.value.fix


def test_impersonate_mode_refuses_an_allowlist_of_kubernetes_names() -> None:
    with pytest.raises(SettingsError) as err:
        settings(service_account_allowlist=["reader"])
    assert "names a Google service account by email" in str(err.value)


def test_allowlist_map_from_the_environment_as_json() -> None:
    s = load_settings(
        environ={
            **ENV,
            "SCRIPT_RUNNER_PRESET": "composer3",
            "SCRIPT_RUNNER_SERVICE_ACCOUNT_ALLOWLIST": json.dumps({"etl-a": EMAIL_A}),
            "SCRIPT_RUNNER_SECRETS": json.dumps({"wh": SECRET}),
        }
    )
    assert s.impersonation_targets()["etl-a"] == EMAIL_A
    assert s.secrets == {"wh": SECRET}


def test_ksa_mode_keeps_the_kubernetes_service_account() -> None:
    spec = plan("# runner: service_account=reader", settings("local"))
    assert (spec.service_account, spec.impersonate) == ("reader", None)
    assert pod_spec.script_env(spec, settings("local"))["RUNNER_IDENTITY"] == "reader"
    assert "RUNNER_IMPERSONATE" not in pod_spec.script_env(spec, settings("local"))


def test_pod_spec_of_an_impersonating_script_keeps_the_pod_identity_and_names_the_target() -> None:
    s = settings(service_account_allowlist={"etl-a": EMAIL_A})
    spec = plan("# runner: service_account=etl-a", s)
    env = pod_spec.script_env(spec, s)
    assert env["RUNNER_IMPERSONATE"] == EMAIL_A
    assert env["RUNNER_IDENTITY"] == EMAIL_A
    assert "service_account_name" not in pod_spec.operator_kwargs(spec, s)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(f"# runner: secret={SECRET}:PGPASSWORD", [f"{SECRET}:PGPASSWORD"], id="full"),
        pytest.param(
            "# runner: secret=projects/p/secrets/api-key:API_KEY",
            ["projects/p/secrets/api-key/versions/latest:API_KEY"],
            id="latest-by-default",
        ),
        pytest.param(
            "# runner: secret=projects/p/secrets/k/versions/3:file",
            ["projects/p/secrets/k/versions/3:file"],
            id="file-pinned-version",
        ),
        pytest.param("# runner: secret=wh:PGPASSWORD", [f"{SECRET}:PGPASSWORD"], id="short-name"),
        pytest.param(
            "# runner: secret=wh:PGPASSWORD\n# runner: secret=wh:file",
            [f"{SECRET}:PGPASSWORD", f"{SECRET}:file"],
            id="repeatable",
        ),
    ],
)
def test_secret_directive_resolves_to_full_names(header: str, expected: list[str]) -> None:
    spec = plan(header, settings(secrets={"wh": SECRET}))
    assert spec.secrets == expected


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param("# runner: secret=wh", "is not NAME:ENVVAR or NAME:file", id="no-target"),
        pytest.param("# runner: secret=wh:1BAD", "is not an environment variable name", id="bad-name"),
        pytest.param("# runner: secret=wh:PATH", "PATH is reserved", id="reserved"),
        pytest.param("# runner: secret=wh:RUNNER_X", "RUNNER_X is reserved", id="reserved-prefix"),
        pytest.param("# runner: secret=nope:X", "'nope' is neither projects/P/secrets/S", id="unknown"),
        pytest.param(
            "# runner: secret=projects/p/secret/x:X", "is neither projects/P/secrets/S", id="malformed"
        ),
        pytest.param("# runner: secret=wh:X secret=projects/p/secrets/o:X", "already set", id="dup"),
        pytest.param("# runner: env=X=1 secret=wh:X", "already set", id="dup-env"),
    ],
)
def test_secret_directive_errors_name_the_problem(header: str, message: str) -> None:
    _, errors = resolve_all(
        OBJ, parse_directives(OBJ.path, header, errors=(errs := [])), settings(secrets={"wh": SECRET})
    )
    text = " ".join(e.message for e in errs + errors)
    assert message in text


def test_secrets_setting_refuses_a_malformed_name() -> None:
    with pytest.raises(SettingsError) as err:
        settings(secrets={"wh": "warehouse-password"})
    assert "is not projects/P/secrets/S[/versions/V]" in str(err.value)


def test_pod_env_and_xcom_carry_secret_names_never_values() -> None:
    s = settings(secrets={"wh": SECRET})
    spec = plan("# runner: secret=wh:PGPASSWORD secret=wh:file", s)
    env = pod_spec.script_env(spec, s)
    assert env["RUNNER_SECRETS"] == f"{SECRET}:PGPASSWORD {SECRET}:file"
    assert "PGPASSWORD" not in env
    assert spec_to_xcom(spec)["secrets"] == [f"{SECRET}:PGPASSWORD", f"{SECRET}:file"]


def test_cli_lint_shows_identity_and_secrets_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.sh").write_text(
        "#!/bin/bash\n# runner: service_account=etl-a secret=wh:PGPASSWORD\necho\n"
    )
    variable = json.dumps(
        {
            "service_account_allowlist": {"etl-a": EMAIL_A},
            "secrets": {"wh": SECRET},
            "identity_bindings": BIND_ALL,
        }
    )
    assert main(["--preset", "composer3", "--settings", variable, "lint", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"identity: impersonates {EMAIL_A}" in out
    assert f"secret: {SECRET} -> $PGPASSWORD" in out


def test_cli_plan_lists_identity_and_secret_names_for_a_local_checkout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCS_BUCKET", "b")
    monkeypatch.setenv("SCRIPT_RUNNER_IMAGE", "img")
    (tmp_path / "a.sh").write_text("#!/bin/bash\n# runner: service_account=etl-a secret=wh:file\necho\n")
    variable = json.dumps(
        {
            "service_account_allowlist": {"etl-a": EMAIL_A},
            "secrets": {"wh": SECRET},
            "identity_bindings": BIND_ALL,
        }
    )
    code = main(["--preset", "composer3", "--settings", variable, "plan", "--source", f"file://{tmp_path}/"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"identity: impersonates {EMAIL_A}" in out
    assert f"secret: {SECRET} -> a file in $RUNNER_SECRETS_DIR" in out
