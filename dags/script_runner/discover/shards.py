"""How many run tasks the DAG has and what they are called (the DAG's shape, decided at parse time).

Airflow refuses to map one task over more than ``[core] max_map_length`` items (1 024 by default). By
default the DAG has one mapped run task, ``run_scripts``: an ordinary run's grid shows discover, the
scripts and the report, and the scheduler handles no task that is always skipped. More scripts than one
task maps need more run tasks (shards), each fed by a small producer task: the DAG has as many as
``SCRIPT_RUNNER_MAX_SCRIPTS`` needs when that is set in the environment (the DAG's shape is decided at
parse time, which reads no Variable), or ``SCRIPT_RUNNER_SHARDS``. Discovery fills the shards in order,
so a run with fewer scripts than one shard holds uses ``run_scripts`` only; the producer of shard 1 then
skips, and with it, without running, every later producer and run task (:class:`ShardList`). A run with
more scripts than the shards hold fails in discover before anything is launched, naming the setting.
No I/O here: the DAG file imports this module. (The task ids are in :mod:`script_runner.config.constants`.)
"""

from __future__ import annotations

from typing import Any

from script_runner.config import constants as c
from script_runner.config.compat import AirflowSkipException, BaseOperator
from script_runner.config.constants import producer_task_id, run_task_id

MAX_SHARDS = 64


def max_map_length() -> int:
    """Airflow's ``[core] max_map_length`` (what one mapped task can expand to)."""
    try:
        from airflow.configuration import conf

        return conf.getint("core", "max_map_length", fallback=c.DEFAULT_MAX_MAP_LENGTH)
    except Exception:  # pragma: no cover - config unavailable outside Airflow
        return c.DEFAULT_MAX_MAP_LENGTH


def default_shards(map_length: int, capacity: int | None = None) -> int:
    """Shards that hold ``capacity`` scripts when each maps at most ``map_length`` (one when None).

    :param map_length: Airflow's max_map_length.
    :param capacity: scripts to hold (``SCRIPT_RUNNER_MAX_SCRIPTS`` from the environment); None: unset.
    """
    if not capacity:
        return 1
    return max(1, min(MAX_SHARDS, -(-capacity // max(1, map_length))))


__all__ = ["MAX_SHARDS", "ShardList", "default_shards", "max_map_length", "run_task_id"]


class ShardList(BaseOperator):  # type: ignore[misc]
    """Return one shard's planned scripts (discover pushed them under ``shard_<index>``); skip when empty.

    Airflow maps a task only over another task's return value, so each shard past the first needs a task
    that returns its list. Shards are filled in order: an empty one means every later one is empty too,
    and its skip cascades down the chain of producers (and their run tasks) without running them.
    A plain operator, not ``@task``: a few of them are built on every parse.

    :param index: the shard's index (1 and up).
    """

    template_fields = ()
    ui_color = "#e8f4f8"

    def __init__(self, *, index: int, **kwargs: Any) -> None:
        super().__init__(task_id=producer_task_id(index), **kwargs)
        self.index = index

    def execute(self, context: Any) -> list[dict[str, Any]]:
        """The shard's scripts, or a skip when it has none."""
        specs: list[dict[str, Any]] = (
            context["ti"].xcom_pull(task_ids=c.DISCOVER_TASK_ID, key=producer_task_id(self.index)) or []
        )
        if not specs:
            raise AirflowSkipException(f"shard {self.index} is empty: every script fits in earlier shards")
        return specs
