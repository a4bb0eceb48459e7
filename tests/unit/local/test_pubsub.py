"""The local stack's Pub/Sub wiring: what fake-gcs-server and Airflow are told (no process started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from local import airflow_env, config, pubsub


def test_gcs_event_flags_publish_finalized_uploads_under_data_of_the_bucket() -> None:
    flags = pubsub.gcs_event_flags("composer-bucket")
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    assert pairs == {
        "-event.pubsub-project-id": "test-project",
        "-event.pubsub-topic": pubsub.TOPIC,
        "-event.bucket": "composer-bucket",
        "-event.object-prefix": "data/",
        "-event.list": "finalize",
    }


@pytest.mark.skipif(not pubsub.installed(), reason="no Pub/Sub emulator on this machine")
def test_airflow_gets_the_subscription_and_the_emulator_unless_pubsub_is_left_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(config, "RUN", tmp_path)
    monkeypatch.delenv("SR_PUBSUB", raising=False)
    env = airflow_env.airflow_env()
    assert (
        env["SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION"]
        == f"projects/test-project/subscriptions/{pubsub.SUBSCRIPTION}"
    )
    assert env["PUBSUB_EMULATOR_HOST"] == f"127.0.0.1:{config.PORTS.pubsub}"
    monkeypatch.setenv("SR_PUBSUB", "0")
    env = airflow_env.airflow_env()
    assert "SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION" not in env
    assert "PUBSUB_EMULATOR_HOST" not in env
    assert not pubsub.enabled()


def test_emulator_command_listens_on_loopback_with_the_stack_project(tmp_path: Path) -> None:
    folder = tmp_path / "pubsub"
    cmd = pubsub.command(21607, folder)
    assert cmd[1:5] == ["beta", "emulators", "pubsub", "start"]
    assert "--host-port=127.0.0.1:21607" in cmd
    assert "--project=test-project" in cmd
    assert folder.is_dir()  # gcloud refuses a missing --data-dir
