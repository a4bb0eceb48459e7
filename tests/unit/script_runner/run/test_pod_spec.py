from __future__ import annotations

import re

import pytest
from kubernetes.client import ApiClient

from script_runner.config.settings_loader import load_settings
from script_runner.discover.spec import ScriptSpec
from script_runner.run import pod_spec

DNS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SETTINGS = load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "local"})


def _spec(path: str = "etl/Load Data.sh", **kw: object) -> ScriptSpec:
    base = dict(
        path=path,
        uri="gs://b/data/" + path,
        generation="5",
        md5="m",
        cpu="250m",
        memory="256Mi",
        ephemeral_storage="1Gi",
        timeout=600,
        start_timeout=120,
        retries=1,
        retry_delay=5,
        image="localhost/script-runner:local",
    )
    return ScriptSpec(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("a.sh", id="short"),
        pytest.param("Sub Folder/ÜBER_load.v2.sh", id="unicode-and-spaces"),
        pytest.param("x" * 300 + ".sh", id="very-long"),
        pytest.param("---.sh", id="only-dashes"),
        pytest.param("9-start-with-digit.sh", id="digit"),
    ],
)
def test_pod_name_is_valid_dns_label(path: str) -> None:
    name = pod_spec.pod_name(path, "manual__2026-11-24T00:00:00+00:00", 1)
    assert len(name) <= 63
    assert DNS.match(name), name


def test_pod_name_is_deterministic_per_script_run_and_try() -> None:
    a = pod_spec.pod_name("etl/load.sh", "run1", 1)
    assert a == pod_spec.pod_name("etl/load.sh", "run1", 1)
    assert a != pod_spec.pod_name("etl/load.sh", "run1", 2)
    assert a != pod_spec.pod_name("etl/load.sh", "run2", 1)


def test_pod_name_never_collides_for_paths_that_sanitize_alike() -> None:
    paths = ["etl/load.sh", "etl_load.sh", "ETL/LOAD.sh", "etl-load.sh", "etl load.sh"]
    names = {pod_spec.pod_name(p, "r", 1) for p in paths}
    assert len(names) == len(paths)
    long_a, long_b = "a" * 100 + "x.sh", "a" * 100 + "y.sh"
    assert pod_spec.pod_name(long_a, "r", 1) != pod_spec.pod_name(long_b, "r", 1)


def test_labels_are_valid_and_recommended() -> None:
    labels = pod_spec.pod_labels(_spec("x" * 100 + "/y.sh"), SETTINGS)
    assert labels["app.kubernetes.io/name"] == "gcs-script-runner"
    assert labels["app.kubernetes.io/managed-by"] == "airflow"
    for value in labels.values():
        assert len(value) <= 63
        assert re.match(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$", value), value


def test_operator_kwargs_are_restricted_and_sized() -> None:
    kw = pod_spec.operator_kwargs(_spec(), SETTINGS)
    assert kw["automount_service_account_token"] is False
    assert kw["on_finish_action"] == "delete_pod"
    assert kw["active_deadline_seconds"] == 600
    assert kw["startup_timeout_seconds"] == 120
    assert kw["startup_check_interval_seconds"] == 1  # not KPO's 5 s: short scripts would idle
    assert kw["random_name_suffix"] is False
    assert kw["do_xcom_push"] is False
    assert 99 in kw["skip_on_exit_code"]
    res = kw["container_resources"]
    assert res.requests == res.limits == {"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "1Gi"}
    csc = ApiClient().sanitize_for_serialization(kw["container_security_context"])
    assert csc == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    psc = ApiClient().sanitize_for_serialization(kw["security_context"])
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 10001
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {m.mount_path for m in kw["volume_mounts"]} == {"/work", "/tmp"}
    assert {v.empty_dir.size_limit for v in kw["volumes"]} == {"1Gi"}  # scratch bounded by ephemeral_storage
    assert "service_account_name" not in kw  # none asked: the namespace default (Composer 3 has no others)
    with_sa = pod_spec.operator_kwargs(_spec(service_account="loader"), SETTINGS)
    assert with_sa["service_account_name"] == "loader"  # Workload Identity: the KSA bound to a GSA
    assert "affinity" not in kw  # Composer 3 forbids it


def test_script_env_follows_the_contract() -> None:
    env = pod_spec.script_env(_spec(env={"A": "1"}, needs=["gs://b/x/:read"]), SETTINGS)
    assert env["RUNNER_SCRIPT_URI"] == "gs://b/data/etl/Load Data.sh"
    assert env["RUNNER_SCRIPT_GENERATION"] == "5"
    assert env["RUNNER_STATE_BUCKET"] == "b"
    assert env["RUNNER_NEEDS"] == "gs://b/x/:read"
    assert env["A"] == "1"


def test_memory_grows_after_oom_only_when_allowed_and_capped() -> None:
    assert pod_spec.memory_for_attempt(_spec(), SETTINGS, 1) == "256Mi"
    spec = _spec(oom_retry=True)
    assert pod_spec.memory_for_attempt(spec, SETTINGS, 0) == "256Mi"
    assert pod_spec.memory_for_attempt(spec, SETTINGS, 1) == "512Mi"
    assert pod_spec.memory_for_attempt(spec, SETTINGS, 10) == "16Gi"


def test_local_fault_annotation_only_when_allowed() -> None:
    assert pod_spec.pod_annotations(_spec(fault="oom"), SETTINGS)["script-runner.local/fault"] == "oom"
    gke = load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "gke"})
    assert "script-runner.local/fault" not in pod_spec.pod_annotations(_spec(fault="oom"), gke)


def test_pod_spec_env_from_config_maps_then_secrets() -> None:
    from script_runner.config.settings import RunnerSettings
    from script_runner.run.pod_spec import env_from_sources

    settings = RunnerSettings(env_from_config_maps=["script-runner-env"], env_from_secrets=["db-credentials"])
    sources = env_from_sources(settings)
    assert [s.config_map_ref.name for s in sources if s.config_map_ref] == ["script-runner-env"]
    assert [s.secret_ref.name for s in sources if s.secret_ref] == ["db-credentials"]
    assert env_from_sources(RunnerSettings()) == []


def test_the_script_pods_model_objects_share_one_client_configuration() -> None:
    # KPO deep-copies the pod while building it; each model's own Configuration, when copied, resets its
    # loggers and clears every logger's cache in the process: sharing one made the pod build ~4x cheaper.
    from script_runner.config.settings_loader import load_settings
    from script_runner.run.operator import ScriptPodOperator

    settings = load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "local"})
    script = {
        "path": "a.sh",
        "uri": "gs://b/data/a.sh",
        "cpu": "100m",
        "memory": "64Mi",
        "ephemeral_storage": "1Gi",
        "timeout": 60,
        "start_timeout": 60,
        "retries": 0,
        "retry_delay": 1,
        "image": "img",
    }
    op = ScriptPodOperator(task_id="run_scripts", script=script, runner_settings=settings)
    models = [*op.env_vars, *op.volumes, *op.volume_mounts, op.container_resources, op.security_context]
    assert len(models) > 5
    assert len({id(m.local_vars_configuration) for m in models}) == 1
