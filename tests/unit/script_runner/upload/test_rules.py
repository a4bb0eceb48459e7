"""Runs on upload, the pure parts: wiring from the environment, notifications → uploads → scripts, ``only``."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import pytest

from script_runner.config.settings_loader import load_settings
from script_runner.exceptions import SettingsError
from script_runner.upload.rules import (
    Upload,
    matches_only,
    only_globs,
    select_uploads,
    upload_wiring,
    uploaded_from_asset_events,
    uploads_from_messages,
)

SUB = "projects/my-proj/subscriptions/script-runner-uploads"


def test_upload_wiring_is_off_without_a_subscription() -> None:
    assert upload_wiring({}) is None
    assert upload_wiring({"SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION": " "}) is None


def test_upload_wiring_reads_the_subscription_path_and_the_settle_window() -> None:
    wiring = upload_wiring({"SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION": SUB, "SCRIPT_RUNNER_UPLOAD_SETTLE": "2s"})
    assert wiring is not None
    assert (wiring.project, wiring.subscription, wiring.settle) == ("my-proj", "script-runner-uploads", 2.0)


def test_upload_wiring_takes_a_bare_name_with_the_environment_project() -> None:
    wiring = upload_wiring(
        {"SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION": "uploads", "GOOGLE_CLOUD_PROJECT": "composer-proj"}
    )
    assert wiring is not None
    assert (wiring.project, wiring.subscription, wiring.settle) == ("composer-proj", "uploads", 5.0)


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION": "uploads"}, id="bare-name-without-project"),
        pytest.param({"SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION": "projects/p/topics/t"}, id="a-topic"),
        pytest.param(
            {"SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION": SUB, "SCRIPT_RUNNER_UPLOAD_SETTLE": "2m"}, id="settle"
        ),
        pytest.param(
            {"SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION": SUB, "SCRIPT_RUNNER_UPLOAD_SETTLE": "x"}, id="nan"
        ),
    ],
)
def test_upload_wiring_refuses_what_is_not_a_subscription_or_a_settle_window(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="SCRIPT_RUNNER_UPLOAD_"):
        upload_wiring(env)


def _message(name: str, *, event: str = "OBJECT_FINALIZE", bucket: str = "bkt", attrs: bool = True) -> Any:
    resource = {"bucket": bucket, "name": name, "generation": "17"}
    attributes = {"eventType": event, "bucketId": bucket, "objectId": name, "objectGeneration": "17"}
    return {
        "ack_id": "a",
        "message": {
            "attributes": attributes if attrs else {"eventType": event},
            "data": base64.b64encode(json.dumps(resource).encode()).decode(),
        },
    }


def test_uploads_from_messages_keeps_finalize_events_and_reads_the_payload_when_attributes_lack_it() -> None:
    uploads = uploads_from_messages(
        [
            _message("data/a.sh"),
            _message("data/gone.sh", event="OBJECT_DELETE"),
            _message("data/b.sh", attrs=False),
        ]
    )
    assert uploads == [Upload("bkt", "data/a.sh", "17"), Upload("bkt", "data/b.sh", "17")]


def test_select_uploads_applies_the_discovery_rules_and_says_why_the_others_are_ignored() -> None:
    settings = load_settings(variable={"source": "gs://bkt/data/", "exclude": ["tmp/"]}, environ={})
    uploads = [
        Upload("bkt", "data/etl/load.sh", "1"),
        Upload("bkt", "data/etl/load.sh", "2"),  # uploaded twice in the burst: one script
        Upload("bkt", "data/a.sh", "1"),
        Upload("bkt", "data/notes.txt", "1"),
        Upload("bkt", "data/.hidden/x.sh", "1"),
        Upload("bkt", "data/tmp/x.sh", "1"),
        Upload("bkt", "data/skip/me.sh", "1"),
        Upload("bkt", "dags/x.sh", "1"),
        Upload("other", "data/y.sh", "1"),
    ]
    selected, ignored = select_uploads(uploads, settings, ignore=["skip/"])
    assert selected == ["a.sh", "etl/load.sh"]
    assert "include globs" in ignored["gs://bkt/data/notes.txt"]
    assert "hidden" in ignored["gs://bkt/data/.hidden/x.sh"]
    assert "'tmp/'" in ignored["gs://bkt/data/tmp/x.sh"]
    assert "'skip/'" in ignored["gs://bkt/data/skip/me.sh"]
    assert "not under the source" in ignored["gs://bkt/dags/x.sh"]
    assert "not in the source" in ignored["gs://other/data/y.sh"]


def test_uploaded_from_asset_events_joins_the_uploads_of_every_event_of_the_run() -> None:
    def event(extra: dict[str, Any]) -> Any:
        return SimpleNamespace(extra=extra)

    events = {
        "asset": [
            event({"from_trigger": True, "payload": {"uploaded": ["b.sh", "a.sh"]}}),
            event({"from_trigger": True, "payload": {"only": ["a.sh", "c/d.sh"]}}),
            event({}),
        ]
    }
    assert uploaded_from_asset_events(events) == ["a.sh", "b.sh", "c/d.sh"]  # "only": an older event
    assert uploaded_from_asset_events(None) == []


def test_only_globs_and_matches_only_take_paths_and_globs() -> None:
    assert only_globs({}) == []
    assert only_globs({"only": "etl/*.sh"}) == ["etl/*.sh"]
    assert only_globs({"only": ["a.sh", ""]}) == ["a.sh"]
    assert matches_only("etl/load.sh", ["etl/*.sh"])
    assert matches_only("a.sh", ["a.sh"])
    assert not matches_only("b.sh", ["a.sh"])


def test_on_upload_is_on_by_default_and_off_in_the_local_preset() -> None:
    assert (
        load_settings(variable={"preset": "gke", "image": "i:1"}, environ={"GCS_BUCKET": "b"}).on_upload
        is True
    )
    assert load_settings(variable={"preset": "local"}, environ={"GCS_BUCKET": "b"}).on_upload is False
