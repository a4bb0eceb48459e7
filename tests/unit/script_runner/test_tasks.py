"""The discover task's body against the GCS emulator, with a stand-in for Airflow's task instance."""

from __future__ import annotations

from typing import Any

import pytest

from script_runner import tasks
from script_runner.settings import load_settings, settings_from_wire

GOOD = "#!/bin/bash\n# runner: cpu=250m memory=256Mi\necho ok\n"


class FakeTI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, *, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_discovery_hands_each_script_the_settings_and_pushes_only_non_empty_shards(
    make_bucket: Any, gcs_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = make_bucket({f"s{i:02}.sh": GOOD for i in range(7)})
    settings = load_settings(environ={"GCS_BUCKET": bucket.name, "SCRIPT_RUNNER_PRESET": "local"})
    ti = FakeTI()
    monkeypatch.setattr(tasks, "load_settings_from_airflow", lambda: settings)
    monkeypatch.setattr(tasks, "gcs_client", lambda _settings: gcs_client)
    monkeypatch.setattr(tasks, "get_current_context", lambda: {"ti": ti})
    monkeypatch.setattr(tasks, "max_map_length", lambda: 3)
    first = tasks.run_discovery(shards=10)
    assert [s["path"] for s in first] == ["s00.sh", "s01.sh", "s02.sh"]
    # Shards fill in order: 3 + 3 + 1; the seven empty ones push nothing (one API call each saved).
    assert sorted(k for k in ti.pushed if k.startswith("shard_")) == ["shard_1", "shard_2"]
    assert [s["path"] for s in ti.pushed["shard_2"]] == ["s06.sh"]
    assert settings_from_wire(first[0]["settings"]) == settings
