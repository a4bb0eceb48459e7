from __future__ import annotations

import pytest

from script_runner.config.settings import settings_from_wire, settings_to_wire
from script_runner.config.settings_loader import load_settings, parse_time_settings
from script_runner.exceptions import SettingsError


def test_settings_default_source_is_composer_bucket_data() -> None:
    s = load_settings(environ={"GCS_BUCKET": "my-env-bucket"})
    assert s.preset == "composer3"
    assert s.source == "gs://my-env-bucket/data/"
    assert (s.source_bucket, s.source_prefix) == ("my-env-bucket", "data/")


@pytest.mark.parametrize(
    ("preset", "namespace", "config_file", "autopilot"),
    [
        pytest.param(
            "composer3", "composer-user-workloads", "/home/airflow/composer_kube_config", False, id="c3"
        ),
        pytest.param("composer2", "script-runner", None, True, id="c2"),
        pytest.param("gke", "script-runner", None, False, id="gke"),
        pytest.param("local", "composer-user-workloads", None, False, id="local"),
    ],
)
def test_settings_presets_set_cluster_access(
    preset: str, namespace: str, config_file: str | None, autopilot: bool
) -> None:
    s = load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": preset})
    assert s.namespace == namespace
    assert s.config_file == config_file
    assert s.autopilot is autopilot
    assert s.kube_hook_kwargs["namespace"] == namespace


def test_settings_composer3_uses_kubernetes_default_and_config_file() -> None:
    kwargs = load_settings(environ={"GCS_BUCKET": "b"}).kube_hook_kwargs
    assert kwargs["kubernetes_conn_id"] == "kubernetes_default"
    assert kwargs["config_file"] == "/home/airflow/composer_kube_config"


def test_settings_env_overrides_variable_which_overrides_preset() -> None:
    s = load_settings(
        variable='{"cpu": "1", "memory": "1Gi", "include": ["etl/*.sh"]}',
        environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_CPU": "250m", "SCRIPT_RUNNER_EXCLUDE": "tmp/*,old/"},
    )
    assert s.cpu == "250m"
    assert s.memory == "1Gi"
    assert s.include == ["etl/*.sh"]
    assert s.exclude == ["tmp/*", "old/"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("file:///home/airflow/gcs/data", "gs://env-bucket/data/", id="data"),
        pytest.param("file:///home/airflow/gcs/data/etl/", "gs://env-bucket/data/etl/", id="subfolder"),
        pytest.param("file:///home/airflow/gcs/", "gs://env-bucket/", id="bucket-root"),
    ],
)
def test_settings_composer_mount_source_is_read_through_the_environment_bucket(
    source: str, expected: str
) -> None:
    """Pods cannot see the workers' gcsfuse mount: the source becomes the bucket it mounts."""
    s = load_settings(environ={"GCS_BUCKET": "env-bucket", "SCRIPT_RUNNER_SOURCE": source})
    assert s.source == expected
    assert s.source_scheme == "gs"
    assert s.source_bucket == "env-bucket"


def test_settings_composer_mount_source_without_gcs_bucket_is_refused_with_the_fix() -> None:
    with pytest.raises(
        SettingsError, match=r"GCS_BUCKET is not set \(fix: set source to gs://<bucket>/data/\)"
    ):
        load_settings(environ={"SCRIPT_RUNNER_SOURCE": "file:///home/airflow/gcs/data/"})


def test_settings_a_worker_folder_source_is_refused_for_a_run_and_kept_for_planning() -> None:
    env = {"GCS_BUCKET": "b", "SCRIPT_RUNNER_SOURCE": "file:///srv/scripts"}
    with pytest.raises(SettingsError, match="pods that run the scripts cannot see the worker's files") as err:
        load_settings(environ=env)
    assert "fix: upload the scripts to a bucket and set source to gs://<bucket>/<prefix>/" in str(err.value)
    planned = load_settings(environ=env, local_folder=True)
    assert (planned.source_scheme, planned.source_prefix) == ("file", "/srv/scripts/")


@pytest.mark.parametrize(
    ("variable", "environ", "needle"),
    [
        pytest.param(None, {}, "GCS_BUCKET is not set", id="no-bucket"),
        pytest.param("{not json", {"GCS_BUCKET": "b"}, "not valid JSON", id="bad-json"),
        pytest.param("[1]", {"GCS_BUCKET": "b"}, "must be a JSON object", id="not-object"),
        pytest.param(
            None, {"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "aws"}, "preset 'aws' is unknown", id="preset"
        ),
        pytest.param(
            None, {"GCS_BUCKET": "b", "SCRIPT_RUNNER_CPU": "lots"}, "setting cpu='lots'", id="bad-cpu"
        ),
        pytest.param(None, {"SCRIPT_RUNNER_SOURCE": "s3://x/"}, "must start with gs://", id="bad-source"),
        pytest.param('{"retries": 9}', {"GCS_BUCKET": "b"}, "above max_retries", id="retries-cap"),
        pytest.param('{"colour": "red"}', {"GCS_BUCKET": "b"}, "setting colour", id="unknown-field"),
    ],
)
def test_settings_errors_name_the_field_and_fix(
    variable: str | None, environ: dict[str, str], needle: str
) -> None:
    with pytest.raises(SettingsError, match=r"fix|set|use") as info:
        load_settings(variable=variable, environ=environ)
    assert needle in str(info.value)


def test_parse_time_settings_reads_env_only() -> None:
    # shards and max_scripts 0: unset, the DAG has one run task (script_runner.discover.shards)
    assert parse_time_settings({}) == {"shards": 0, "max_scripts": 0, "max_retries": 5, "retry_delay": 10}
    assert parse_time_settings({"SCRIPT_RUNNER_MAX_SCRIPTS": "5000"})["max_scripts"] == 5000
    out = parse_time_settings({"SCRIPT_RUNNER_SHARDS": "10", "SCRIPT_RUNNER_RETRY_DELAY": "2m"})
    assert out["shards"] == 10
    assert out["retry_delay"] == 120
    with pytest.raises(SettingsError, match="SHARDS"):
        parse_time_settings({"SCRIPT_RUNNER_SHARDS": "-1"})


@pytest.mark.parametrize(
    "name",
    ["SCRIPT_RUNNER_IMAGE_ALLOWLIST", "SCRIPT_RUNNER_INCLUDE", "SCRIPT_RUNNER_SERVICE_ACCOUNT_ALLOWLIST"],
)
def test_settings_invalid_json_list_in_env_names_the_variable_and_fix(name: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"GCS_BUCKET": "b", name: "[reader, writer]"})
    message = str(info.value)
    assert f"{name}='[reader, writer]' is not a valid JSON list" in message
    assert "fix:" in message
    assert f"{name}=a,b" in message


def test_settings_json_list_of_non_strings_in_env_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="must be a JSON list of strings"):
        load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_EXCLUDE": "[1, 2]"})


def test_settings_env_lists_accept_json_and_commas() -> None:
    s = load_settings(
        environ={
            "GCS_BUCKET": "b",
            "SCRIPT_RUNNER_PRESET": "gke",  # Kubernetes names: composer3 impersonates (emails)
            "SCRIPT_RUNNER_IMAGE_ALLOWLIST": '["a/*", "b:1"]',
            "SCRIPT_RUNNER_SERVICE_ACCOUNT_ALLOWLIST": "reader, writer",
        }
    )
    assert s.image_allowlist == ["a/*", "b:1"]
    assert s.service_account_allowlist == ["reader", "writer"]


def test_settings_fallback_keeps_valid_env_and_drops_the_invalid_variable() -> None:
    from script_runner.config.settings_loader import fallback_settings

    environ = {
        "GCS_BUCKET": "b",
        "SCRIPT_RUNNER_PRESET": "local",
        "SCRIPT_RUNNER_STATE_ROOT": "my-root",
        "SCRIPT_RUNNER_IMAGE_ALLOWLIST": "[oops",
    }
    with pytest.raises(SettingsError):
        load_settings(environ=environ)
    s = fallback_settings(environ)
    assert (s.preset, s.state_root, s.image_allowlist) == ("local", "my-root", [])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("SCRIPT_RUNNER_MEMORY", "500m", id="memory-milli"),
        pytest.param("SCRIPT_RUNNER_MAX_EPHEMERAL_STORAGE", "0.5", id="storage-half-byte"),
    ],
)
def test_settings_sub_byte_quantities_are_rejected(field: str, value: str) -> None:
    with pytest.raises(SettingsError, match="not a whole number of bytes"):
        load_settings(environ={"GCS_BUCKET": "b", field: value})


@pytest.mark.parametrize("preset", ["composer3", "composer2", "local"])
def test_settings_travel_to_the_run_tasks_small_and_whole_but_without_the_notifier(preset: str) -> None:
    variable = {
        "deferrable": True,
        "extra_env": {"A": "1"},
        "max_scripts": 20_000,
        "notifier": "airflow.providers.slack.notifications.slack.SlackNotifier",
        "notifier_kwargs": {"webhook": "https://hooks.example/secret"},
    }
    settings = load_settings(variable=variable, environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": preset})
    wire = settings_to_wire(settings)
    assert "notifier_kwargs" not in wire
    assert "secret" not in str(wire)
    assert settings_from_wire(wire) == settings.model_copy(update={"notifier": None, "notifier_kwargs": {}})
    # Only what differs from the preset travels (one copy per script in XCom).
    plain = settings_to_wire(load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": preset}))
    assert set(plain) == {"preset", "source"}


def test_settings_handed_over_broken_are_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="handed over by discovery"):
        settings_from_wire({"preset": "local", "source": "gs://b/data/", "cpu": "lots"})


@pytest.mark.parametrize(
    ("variable", "environ"),
    [
        pytest.param({"cpu": "8"}, {}, id="whole-settings-error"),
        pytest.param({"extra_env": {"API_TOKEN": ["S3CRET-TOKEN"]}}, {}, id="bad-extra-env-value"),
        pytest.param({"notifier_kwargs": "hook-S3CRET-TOKEN"}, {}, id="bad-notifier-kwargs"),
        pytest.param({}, {"SCRIPT_RUNNER_EXTRA_ENV": '{"API_TOKEN": "S3CRET-TOKEN"'}, id="env-not-json"),
    ],
)
def test_settings_error_never_echoes_secret_bearing_inputs(
    variable: dict[str, object], environ: dict[str, str]
) -> None:
    """Issue 25: a validation error printed every input (webhook secrets, extra_env values) into the task log,
    the report and the notification; the chained pydantic error printed them again in the traceback."""
    import traceback

    secrets = {
        "notifier_kwargs": {"webhook": "https://hooks.example/S3CRET-TOKEN"},
        "extra_env": {"API_TOKEN": "S3CRET-TOKEN"},
    }
    with pytest.raises(SettingsError) as err:
        load_settings(
            variable={**secrets, **variable},
            environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "gke", **environ},
        )
    shown = "".join(traceback.format_exception(err.value))
    assert "S3CRET" not in shown
    assert "setting " in str(err.value) or "SCRIPT_RUNNER_EXTRA_ENV" in str(err.value)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        pytest.param("https_proxy", "*_PROXY variables send the runner's own API calls", id="proxy-lower"),
        pytest.param("ALL_PROXY", "*_PROXY variables send the runner's own API calls", id="proxy-upper"),
        pytest.param("LD_AUDIT", "loads a library into every program", id="ld-audit"),
        pytest.param("GLIBC_TUNABLES", "C library's behaviour", id="glibc"),
        pytest.param("CURL_CA_BUNDLE", "CURL_* variables configure curl", id="curl"),
        pytest.param("SSL_CERT_FILE", "certificates TLS trusts", id="ssl"),
        pytest.param("_RUNNER_TOKEN", "_RUNNER_* variables are the runner library's internals", id="lib"),
    ],
)
def test_settings_extra_env_reserved_names_are_rejected_with_the_fix(name: str, why: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(
            variable={"extra_env": {name: "http://S3CRET@evil:3128"}},
            environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "gke"},
        )
    shown = str(err.value)
    assert f"extra_env {name} is reserved: " in shown
    assert why in shown
    assert "remove it from extra_env" in shown
    assert "S3CRET" not in shown


def test_settings_extra_env_keeps_the_local_endpoints() -> None:
    env = {"STORAGE_EMULATOR_HOST": "http://x", "CLOUDSDK_CORE_PROJECT": "p", "BOTO_CONFIG": "/b"}
    settings = load_settings(variable={"extra_env": env}, environ={"GCS_BUCKET": "b"})
    assert settings.extra_env == env
