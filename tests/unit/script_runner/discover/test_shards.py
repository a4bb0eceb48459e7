"""The DAG's shards: default count, task ids, and the producer that skips an empty shard."""

from __future__ import annotations

from typing import Any

import pytest

from script_runner.config.compat import AirflowSkipException
from script_runner.config.constants import run_task_id
from script_runner.discover.shards import ShardList, default_shards


def test_default_shards_one_unless_the_environment_asks_for_more_scripts_than_one_maps() -> None:
    assert default_shards(1024) == 1  # no setting: one run task (1 024 scripts under Airflow's default)
    assert default_shards(1024, 1024) == 1
    assert default_shards(1024, 1025) == 2
    assert default_shards(1024, 10_000) == 10  # SCRIPT_RUNNER_MAX_SCRIPTS=10000: 10 240 scripts
    assert default_shards(10_000, 10_000) == 1
    assert default_shards(50, 10_000) == 64  # capped: a tiny max_map_length needs SCRIPT_RUNNER_SHARDS


def test_run_task_ids_keep_run_scripts_for_the_first_shard() -> None:
    assert [run_task_id(i) for i in range(3)] == ["run_scripts", "run_scripts_1", "run_scripts_2"]


class FakeTI:
    def __init__(self, pushed: dict[str, Any]) -> None:
        self.pushed = pushed

    def xcom_pull(self, *, task_ids: str, key: str) -> Any:
        assert task_ids == "discover"
        return self.pushed.get(key)


def test_a_shard_producer_returns_its_scripts_and_skips_when_it_has_none() -> None:
    producer = ShardList(index=2)
    assert producer.task_id == "shard_2"
    scripts = [{"path": "a.sh"}]
    assert producer.execute({"ti": FakeTI({"shard_2": scripts})}) == scripts
    with pytest.raises(AirflowSkipException, match="shard 2 is empty"):
        producer.execute({"ti": FakeTI({"shard_2": []})})
    with pytest.raises(AirflowSkipException):
        producer.execute({"ti": FakeTI({})})
