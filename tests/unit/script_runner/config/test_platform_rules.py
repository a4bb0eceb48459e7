"""The composer3 and composer2 presets resolve scripts to what the platform will really run (or refuse)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from script_runner.cli.main import main
from script_runner.config.settings_loader import load_settings
from script_runner.discover.directives import parse_directives
from script_runner.discover.resolve import resolve
from script_runner.discover.spec import ScriptObject, ScriptSpec
from script_runner.exceptions import DirectiveError, SettingsError
from script_runner.run import pod_spec

OBJ = ScriptObject(path="etl/load.sh", uri="gs://b/data/etl/load.sh", generation="7", md5="x")
BASE_ENV = {"GCS_BUCKET": "b", "SCRIPT_RUNNER_IMAGE": "img"}
C3 = load_settings(environ={**BASE_ENV, "SCRIPT_RUNNER_PRESET": "composer3"})
C2 = load_settings(environ={**BASE_ENV, "SCRIPT_RUNNER_PRESET": "composer2"})


def plan(header: str, settings: Any = C3) -> ScriptSpec:
    return resolve(OBJ, parse_directives(OBJ.path, header), settings)


@pytest.mark.parametrize(
    ("header", "cpu", "memory", "storage", "notes"),
    [
        pytest.param(
            "# runner: cpu=100m memory=100Mi ephemeral_storage=1Mi",
            "250m",
            "512Mi",
            "10Mi",
            [
                "composer3: cpu 100m -> 250m",
                "composer3: memory 100Mi -> 512Mi",
                "composer3: ephemeral_storage 1Mi -> 10Mi",
            ],
            id="minimums",
        ),
        pytest.param(
            "# runner: cpu=300m memory=1Gi", "500m", "1Gi", "1Gi", ["composer3: cpu 300m -> 500m"], id="step"
        ),
        pytest.param(
            "# runner: cpu=250m memory=4Gi", "750m", "4Gi", "1Gi", ["composer3: cpu 250m -> 750m"], id="ratio"
        ),
        pytest.param("# runner: cpu=1 memory=2Gi", "1", "2Gi", "1Gi", [], id="supported-unchanged"),
    ],
)
def test_composer3_preset_bends_resources_to_supported_values_and_says_so(
    header: str, cpu: str, memory: str, storage: str, notes: list[str]
) -> None:
    spec = plan(header)
    assert (spec.cpu, spec.memory, spec.ephemeral_storage) == (cpu, memory, storage)
    assert spec.notes == notes


def test_composer3_preset_refuses_values_above_what_composer_3_supports() -> None:
    roomy = load_settings(
        environ={
            **BASE_ENV,
            "SCRIPT_RUNNER_MAX_CPU": "64",
            "SCRIPT_RUNNER_MAX_EPHEMERAL_STORAGE": "50Gi",
        }
    )
    with pytest.raises(DirectiveError) as err:
        plan("# runner: cpu=32", roomy)
    assert err.value.message == "cpu=32 is above what Cloud Composer 3 supports (30)"
    assert err.value.fix == "ask for at most cpu=30"
    with pytest.raises(DirectiveError) as err:
        plan("# runner: ephemeral_storage=20Gi", roomy)
    assert "ephemeral_storage=20Gi is above what Cloud Composer 3 supports (10Gi)" in err.value.message


def test_composer3_preset_in_ksa_mode_refuses_a_service_account_directive() -> None:
    ksa = load_settings(
        environ={**BASE_ENV, "SCRIPT_RUNNER_PRESET": "composer3", "SCRIPT_RUNNER_IDENTITY_MODE": "ksa"}
    )
    with pytest.raises(DirectiveError) as err:
        plan("# runner: service_account=loader", ksa)
    assert "Cloud Composer 3 has no custom Kubernetes service accounts" in err.value.message
    assert err.value.line == 1


def test_composer3_preset_impersonates_only_allowlisted_google_service_accounts() -> None:
    assert C3.identity_mode == "impersonate"
    with pytest.raises(DirectiveError) as err:
        plan("# runner: service_account=loader")
    assert "'loader' is not allowed to be impersonated (allowed: none)" in err.value.message
    allowed = load_settings(
        variable={
            "service_account_allowlist": {"loader": "loader@p.iam.gserviceaccount.com"},
            "identity_bindings": {"*": {"service_accounts": ["loader"]}},
        },
        environ={**BASE_ENV, "SCRIPT_RUNNER_PRESET": "composer3"},
    )
    spec = plan("# runner: service_account=loader", allowed)
    assert (spec.impersonate, spec.service_account) == ("loader@p.iam.gserviceaccount.com", None)
    kwargs = pod_spec.operator_kwargs(spec, allowed)
    assert "service_account_name" not in kwargs  # the pod keeps the environment's identity


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param(
            {"namespace": "team-a"}, "Cloud Composer 3 runs every pod in composer-user-workloads", id="ns"
        ),
        pytest.param({"service_account": "loader"}, "no custom Kubernetes service accounts", id="sa"),
    ],
)
def test_composer3_settings_that_composer_3_ignores_are_refused_with_the_fix(
    override: dict[str, Any], expected: str
) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(variable=override, environ=BASE_ENV)
    assert expected in str(err.value)
    assert "fix:" in str(err.value)


def test_composer2_preset_notes_autopilot_and_refuses_above_its_maximum() -> None:
    spec = plan("# runner: cpu=100m memory=100Mi ephemeral_storage=1Mi", C2)
    assert (spec.cpu, spec.memory, spec.ephemeral_storage) == ("250m", "512Mi", "10Mi")
    assert spec.notes[-1] == "autopilot: ephemeral_storage 1Mi -> 10Mi"
    roomy = load_settings(
        environ={**BASE_ENV, "SCRIPT_RUNNER_PRESET": "composer2", "SCRIPT_RUNNER_MAX_MEMORY": "200Gi"}
    )
    with pytest.raises(DirectiveError) as err:
        plan("# runner: cpu=4 memory=120Gi", roomy)
    assert err.value.message == "memory=120Gi is above what GKE Autopilot supports (110Gi)"


def test_local_and_gke_presets_keep_resources_as_asked() -> None:
    for preset in ("local", "gke"):
        settings = load_settings(environ={**BASE_ENV, "SCRIPT_RUNNER_PRESET": preset})
        spec = plan("# runner: cpu=100m memory=100Mi", settings)
        assert (spec.cpu, spec.memory, spec.notes) == ("100m", "100Mi", [])


def test_default_preset_applies_only_when_nothing_names_a_preset() -> None:
    env = {**BASE_ENV, "SCRIPT_RUNNER_DEFAULT_PRESET": "local"}
    assert load_settings(environ=env).preset == "local"
    assert load_settings(variable={"preset": "composer3"}, environ=env).preset == "composer3"
    named = {**env, "SCRIPT_RUNNER_PRESET": "gke"}
    assert load_settings(variable={"preset": "composer3"}, environ=named).preset == "gke"


def test_cli_plan_shows_the_composer3_resources_a_pod_will_get(
    make_bucket: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = make_bucket({"small.sh": "#!/bin/bash\n# runner: cpu=100m memory=256Mi\n"})
    monkeypatch.setenv("GCS_BUCKET", bucket.name)
    monkeypatch.setenv("SCRIPT_RUNNER_IMAGE", "img")
    assert main(["--preset", "composer3", "plan", "--json"]) == 0
    launched = json.loads(capsys.readouterr().out)["launch"][0]
    assert (launched["cpu"], launched["memory"]) == ("250m", "512Mi")
    assert launched["notes"] == ["composer3: cpu 100m -> 250m", "composer3: memory 256Mi -> 512Mi"]
    assert main(["--preset", "composer3", "plan"]) == 0
    text = capsys.readouterr().out
    assert "small.sh" in text
    assert "composer3: cpu 100m -> 250m" in text


@pytest.mark.parametrize(
    ("settings", "cpu"),
    [pytest.param(C3, "750m", id="composer3"), pytest.param(C2, "750m", id="composer2")],
)
def test_memory_grown_after_an_oom_brings_cpu_up_to_a_supported_ratio(settings: Any, cpu: str) -> None:
    spec = plan("# runner: cpu=250m memory=1Gi oom_retry=true", settings)
    grown = pod_spec.resources(spec, "4Gi", settings=settings)
    assert grown.requests == {"cpu": cpu, "memory": "4Gi", "ephemeral-storage": "1Gi"}
    assert grown.limits == grown.requests


def test_memory_grown_after_an_oom_keeps_cpu_where_no_platform_rules_apply() -> None:
    local = load_settings(environ={**BASE_ENV, "SCRIPT_RUNNER_PRESET": "local"})
    spec = plan("# runner: cpu=250m memory=1Gi oom_retry=true", local)
    assert pod_spec.resources(spec, "4Gi", settings=local).requests["cpu"] == "250m"
