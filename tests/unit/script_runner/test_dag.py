"""The DAG file: imports cleanly, has the expected shape, and does no I/O at parse time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
DAGS = ROOT / "dags"


def dag_bag(folder: Path) -> Any:
    """Airflow's DagBag: in ``airflow.dag_processing.dagbag`` from 3.2 on, ``airflow.models`` before."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2 (make unit-af2)
        from airflow.models.dagbag import DagBag
    import inspect

    # Airflow 2 and 3.2 take include_examples (3.2's default follows load_examples, which is on); 3.3 does not
    if "include_examples" in inspect.signature(DagBag.__init__).parameters:
        return DagBag(dag_folder=str(folder), include_examples=False)
    return DagBag(dag_folder=str(folder))


_AIRFLOW_2 = __import__("airflow").__version__.startswith("2.")


@pytest.fixture
def dagbag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    return dag_bag(DAGS)


def test_dagbag_has_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert "gcs_script_runner" in dagbag.dags


def run_partial(dag: Any) -> dict[str, Any]:
    return dict(dag.get_task("run_scripts").partial_kwargs)


def test_dag_shape_discover_run_report(dagbag: Any) -> None:
    dag = dagbag.dags["gcs_script_runner"]
    # By default one run task: an ordinary run's grid shows discover, the scripts and the report, and no
    # shard task that is always skipped (1 024 scripts under Airflow's default max_map_length).
    assert {t.task_id for t in dag.tasks} == {"discover", "run_scripts", "report"}
    assert dag.get_task("report").trigger_rule == "all_done"
    assert dag.get_task("report").upstream_task_ids == {"run_scripts"}
    run = dag.get_task("run_scripts")
    assert run.upstream_task_ids == {"discover"}
    assert run.partial_kwargs["map_index_template"] == "{{ task.script_path }}"
    # Airflow's own retries back off exponentially (a multiplier from 3.3, a flag before); it is the floor
    # under each script's retry_delay.
    assert run.partial_kwargs["retry_exponential_backoff"] in (2.0, True)
    assert run.partial_kwargs["retry_delay"].total_seconds() == 10
    # discover's return value is every script's plan, env= values included: not printed in its log
    assert dag.get_task("discover").show_return_value_in_logs is False


def test_dag_has_the_run_tasks_max_scripts_needs_when_the_environment_sets_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SCRIPT_RUNNER_MAX_SCRIPTS", "10000")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    dag = dag_bag(DAGS).dags["gcs_script_runner"]
    # 10 000 under max_map_length 1 024: 10 run tasks, shards 1-9 fed by a chain of producers.
    producers = {f"shard_{i}" for i in range(1, 10)}
    runs = {"run_scripts"} | {f"run_scripts_{i}" for i in range(1, 10)}
    assert {t.task_id for t in dag.tasks} == {"discover", "report"} | producers | runs
    assert dag.get_task("report").upstream_task_ids == runs
    # The producers form a chain after discover: the first empty shard skips the rest without running them.
    assert dag.get_task("shard_1").upstream_task_ids == {"discover"}
    assert dag.get_task("shard_5").upstream_task_ids == {"shard_4"}
    assert dag.get_task("run_scripts_5").upstream_task_ids == {"shard_5"}
    # Every shard's run task is configured as the first (their partials are copies of its partial).
    for other in (dag.get_task(f"run_scripts_{i}") for i in range(1, 10)):
        assert {**other.partial_kwargs, "task_id": "-"} == {**run_partial(dag), "task_id": "-"}


def test_dag_shards_beyond_max_map_length(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCRIPT_RUNNER_SHARDS", "4")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    dag = dag_bag(DAGS).dags["gcs_script_runner"]
    runs = {"run_scripts", "run_scripts_1", "run_scripts_2", "run_scripts_3"}
    assert {t.task_id for t in dag.tasks} == {"discover", "shard_1", "shard_2", "shard_3", "report"} | runs
    assert dag.get_task("report").upstream_task_ids == runs


PROBE = r"""
import socket, sys, time
calls = []
real_connect = socket.socket.connect
def spy(self, address):
    calls.append(address)
    return real_connect(self, address)
socket.socket.connect = spy
source = sys.argv[2]
touched = []
def audit(event, args):
    # Every file open, listing and stat of the source folder (a file:// source) is a parse-time read.
    if event in ("open", "os.listdir", "os.scandir", "os.stat", "os.lstat") and args:
        path = str(args[0])
        if path.startswith(source):
            touched.append(f"{event} {path}")
sys.addaudithook(audit)
sys.path.insert(0, sys.argv[1])
from script_runner.discover import discovery
def boom(*a, **k):
    raise AssertionError("discovery ran at parse time")
discovery.discover = boom
t0 = time.perf_counter()
import runpy
runpy.run_path(sys.argv[1] + "/gcs_script_runner.py")
print(len(touched), len(calls), time.perf_counter() - t0)
"""


def parse_probe(source: Path, **env: str) -> tuple[int, int]:
    """Parse the DAG file in a fresh interpreter (PROBE) with only ``env`` set (and an Airflow home under
    ``source``'s parent): how many reads of ``source`` and how many socket connects the parse made.

    :param source: the folder whose every read counts.
    :param env: the parse's environment (GCS_BUCKET, SCRIPT_RUNNER_SOURCE, ...).
    """
    env = {
        "AIRFLOW_HOME": str(source.parent / "airflow"),
        "PATH": "/usr/bin:/bin",
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
        **env,
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(DAGS), str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    touched, connects, _secs = out.stdout.split()[-3:]
    return int(touched), int(connects)


@pytest.mark.parametrize(
    "scheme", [pytest.param("gs", id="gcs-source"), pytest.param("file", id="mounted-folder")]
)
def test_dag_parse_touches_no_network_and_no_source(tmp_path: Path, scheme: str) -> None:
    # A source that would hang or fail if touched: a bucket on an address nothing listens on, or a folder
    # of 500 scripts whose every open, listing and stat is recorded.
    folder = tmp_path / "data"
    for i in range(500):
        (folder / f"team{i % 5}").mkdir(parents=True, exist_ok=True)
        (folder / f"team{i % 5}" / f"job_{i}.sh").write_text("#!/bin/bash\n# runner: cpu=100m\necho hi\n")
    source = "gs://never-touched/data/" if scheme == "gs" else folder.as_uri() + "/"
    touched, connects = parse_probe(folder, GCS_BUCKET="never-touched", SCRIPT_RUNNER_SOURCE=source)
    assert (touched, connects) == (0, 0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("none", None, id="none"),
        pytest.param("", None, id="empty"),
        pytest.param("@hourly", "@hourly", id="preset"),
        pytest.param("0 3 * * *", "0 3 * * *", id="cron"),
    ],
)
def test_dag_schedule_from_env(monkeypatch: pytest.MonkeyPatch, raw: str, expected: str | None) -> None:
    from script_runner.dag import build_dag

    monkeypatch.setenv("SCRIPT_RUNNER_SCHEDULE", raw)
    dag = build_dag()
    # DAG.schedule is a property from Airflow 3 on; Airflow 2 keeps what it was given as schedule_interval
    assert (dag.schedule_interval if _AIRFLOW_2 else dag.schedule) == expected
    if expected is None:
        assert type(dag.timetable).__name__ == "NullTimetable"


def test_dag_offers_the_trigger_form(dagbag: Any) -> None:
    dag = dagbag.dags["gcs_script_runner"]
    params = dag.params
    assert set(params.keys()) == {"only", "exclude", "dry_run", "rerun", "reason", "due_at"}
    for name in params:
        assert params.get_param(name).description, name
    assert params["dry_run"] is False
    assert params["only"] == []
    # the shape does not change with the form: the same tasks as the DAG built without it
    from script_runner.dag import build_dag

    ids = {t.task_id for t in dag.tasks}
    assert {"discover", "run_scripts", "report"} <= ids
    assert ids == {t.task_id for t in build_dag(params=False).tasks}
