"""The discover task's body against the GCS emulator, with a stand-in for Airflow's task instance."""

from __future__ import annotations

from typing import Any

import pytest

from script_runner import tasks
from script_runner.config.settings_loader import load_settings

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
    # The items carry the specs alone (every mapped task pulls the whole list): no settings in any.
    assert all("settings" not in spec for spec in first)


class _StatesTI:
    """get_task_states as Airflow answers it: "<task_id>_<map_index>", the bare id for an unexpanded task."""

    dag_id = "d"

    def __init__(self, rows: list[tuple[str, int, str]]) -> None:
        self.rows = rows

    def get_task_states(self, *, dag_id: str, run_ids: list[str], task_ids: list[str]) -> dict[str, Any]:
        return {
            run_ids[0]: {
                (task if index < 0 else f"{task}_{index}"): state
                for task, index, state in self.rows
                if task in task_ids
            }
        }


def test_script_states_do_not_read_a_skipped_shard_as_a_map_index_of_the_first() -> None:
    from script_runner.tasks import _script_states

    # Shard 0 ran two scripts; shard 1 ("run_scripts_1") was empty and skipped without expanding.
    ti = _StatesTI(
        [("run_scripts", 0, "success"), ("run_scripts", 1, "failed"), ("run_scripts_1", -1, "skipped")]
    )
    planned = [[{"path": "a.sh"}, {"path": "b.sh"}], []]
    assert _script_states(ti, "r", planned, ["run_scripts", "run_scripts_1"]) == {
        "a.sh": "success",
        "b.sh": "failed",
    }
