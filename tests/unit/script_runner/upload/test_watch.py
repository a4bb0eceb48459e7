"""Runs on upload, the Airflow wiring: the runner DAG's asset watcher (Airflow 3), the watcher DAG (2.11),
the uploaded scripts becoming the run's ``uploaded`` (exact paths), and still no I/O at parse time."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from script_runner.discover.discovery import DiscoveryResult
from script_runner.discover.spec import Rejected
from script_runner.upload.rules import ASSET_NAME
from tests.unit.script_runner.test_dag import _AIRFLOW_2, DAGS, dag_bag, parse_probe

SUB = "projects/test-project/subscriptions/script-runner-uploads"
needs_airflow_3 = pytest.mark.skipif(_AIRFLOW_2, reason="asset watchers are Airflow 3")


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION", SUB)
    monkeypatch.setenv("SCRIPT_RUNNER_UPLOAD_SETTLE", "3s")


def _watched_asset(dag: Any) -> Any:
    condition = dag.timetable.asset_condition
    assets = [condition] if hasattr(condition, "watchers") else list(condition.objects)
    (asset,) = assets
    return asset


@needs_airflow_3
@pytest.mark.usefixtures("wired")
def test_wired_dag_is_scheduled_on_the_upload_asset_whose_watcher_pulls_the_subscription(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from script_runner.dag import build_dag
    from script_runner.upload.trigger import UploadTrigger

    monkeypatch.setenv("SCRIPT_RUNNER_SCHEDULE", "none")
    dag = build_dag()
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    asset = _watched_asset(dag)
    assert asset.name == ASSET_NAME
    (watcher,) = asset.watchers
    trigger = watcher.trigger
    assert isinstance(trigger, UploadTrigger)
    assert (trigger.project_id, trigger.subscription, trigger.settle) == (
        "test-project",
        "script-runner-uploads",
        3.0,
    )


@needs_airflow_3
@pytest.mark.usefixtures("wired")
def test_wired_dag_keeps_its_time_schedule_beside_the_uploads(monkeypatch: pytest.MonkeyPatch) -> None:
    from script_runner.dag import build_dag

    monkeypatch.setenv("SCRIPT_RUNNER_SCHEDULE", "@daily")
    dag = build_dag()
    assert type(dag.timetable).__name__ == "AssetOrTimeSchedule"
    assert _watched_asset(dag).name == ASSET_NAME


@needs_airflow_3
@pytest.mark.usefixtures("wired")
def test_wired_dag_reads_its_time_schedule_in_the_default_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    """As an unwired DAG's cron is: script schedules are read in that zone too (they were UTC here)."""
    from script_runner.dag import build_dag

    monkeypatch.setenv("SCRIPT_RUNNER_SCHEDULE", "0 6 * * *")
    monkeypatch.setenv("AIRFLOW__CORE__DEFAULT_TIMEZONE", "Europe/Berlin")
    dag = build_dag()
    cron = dag.timetable.timetable
    # Airflow 3.2+'s SDK timetable names it timezone; 3.0/3.1's core one keeps it in _timezone.
    assert str(getattr(cron, "timezone", None) or getattr(cron, "_timezone", "")) == "Europe/Berlin"


class _SdkBefore32(ModuleType):
    """``airflow.sdk`` as Airflow 3.0/3.1 ship it: no built-in timetables (they joined the SDK in 3.2)."""

    MISSING = frozenset({"AssetOrTimeSchedule", "CronTriggerTimetable"})

    def __init__(self, real: ModuleType) -> None:
        super().__init__(real.__name__)
        self._real = real

    def __getattr__(self, name: str) -> Any:
        if name in self.MISSING:
            raise AttributeError(name)
        return getattr(self._real, name)


@needs_airflow_3
@pytest.mark.usefixtures("wired")
def test_wired_dag_with_a_time_schedule_builds_where_the_sdk_has_no_timetables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Airflow 3.1.8 with uploads wired: "cannot import name 'AssetOrTimeSchedule' from 'airflow.sdk'" lost
    # the whole DAG file. Core's airflow.timetables has the same schedule there.
    import airflow.sdk
    import airflow.timetables.assets
    import airflow.timetables.trigger  # core imports these from airflow.sdk on 3.2+: load them first

    from script_runner.dag import build_dag

    monkeypatch.setitem(sys.modules, "airflow.sdk", _SdkBefore32(airflow.sdk))
    with pytest.raises(ImportError):
        from airflow.sdk import AssetOrTimeSchedule  # noqa: F401
    monkeypatch.setenv("SCRIPT_RUNNER_SCHEDULE", "@daily")
    dag = build_dag()
    assert type(dag.timetable).__name__ == "AssetOrTimeSchedule"
    assert _watched_asset(dag).name == ASSET_NAME


def test_unwired_dag_has_no_asset(monkeypatch: pytest.MonkeyPatch) -> None:
    from script_runner.dag import build_dag

    monkeypatch.delenv("SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION", raising=False)
    monkeypatch.setenv("SCRIPT_RUNNER_SCHEDULE", "none")
    assert type(build_dag().timetable).__name__ == "NullTimetable"


@pytest.mark.usefixtures("wired")
def test_wired_dagbag_has_no_import_errors_and_a_watcher_dag_only_on_airflow_2() -> None:
    bag = dag_bag(DAGS)
    assert bag.import_errors == {}
    if _AIRFLOW_2:
        watcher = bag.dags["gcs_script_runner_upload"]
        assert watcher.get_task("run_uploaded").upstream_task_ids == {"wait_for_upload"}
        assert watcher.get_task("run_uploaded").trigger_dag_id == "gcs_script_runner"
        assert watcher.max_active_runs == 1
    else:
        assert set(bag.dags) == {"gcs_script_runner"}


def test_wired_dag_parse_touches_no_network(tmp_path: Path) -> None:
    _touched, connects = parse_probe(
        tmp_path / "data",
        GCS_BUCKET="never-touched",
        PUBSUB_EMULATOR_HOST="127.0.0.1:9",
        SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION=SUB,
    )
    assert connects == 0


def _context(conf: dict[str, Any], payloads: list[dict[str, Any]]) -> dict[str, Any]:
    events = [SimpleNamespace(extra={"from_trigger": True, "payload": p}) for p in payloads]
    return {"dag_run": SimpleNamespace(conf=conf), "triggering_asset_events": {"asset": events}}


@pytest.mark.parametrize(
    ("conf", "payloads", "uploaded"),
    [
        pytest.param({}, [{"uploaded": ["b.sh"]}, {"uploaded": ["a.sh"]}], ["a.sh", "b.sh"], id="upload-run"),
        pytest.param({"only": ["x.sh"]}, [{"uploaded": ["b.sh"]}], None, id="conf-wins"),
        pytest.param({"rerun": True}, [], None, id="no-uploads"),
    ],
)
def test_current_conf_takes_uploaded_from_the_uploads_that_triggered_the_run(
    monkeypatch: pytest.MonkeyPatch, conf: dict[str, Any], payloads: list[dict[str, Any]], uploaded: Any
) -> None:
    from script_runner.upload.rules import current_conf

    assert current_conf(_context(conf, payloads)).get("uploaded") == uploaded


def test_discovery_keeps_only_the_scripts_the_run_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from script_runner.config.params import run_options
    from script_runner.discover.run_scope import narrow
    from script_runner.upload.rules import current_conf

    ctx = _context({}, [{"uploaded": ["up/a.sh", "up/bad.sh"]}])
    result = DiscoveryResult(
        specs=[{"path": "up/a.sh"}, {"path": "old.sh"}],
        rejected=[
            Rejected(path="up/bad.sh", uri="u", reason="r"),
            Rejected(path="x.sh", uri="u", reason="r"),
        ],
    )
    left_out = narrow(result, run_options({}, current_conf(ctx)), None)
    assert [s["path"] for s in result.specs] == ["up/a.sh"]
    assert [r.path for r in result.rejected] == ["up/bad.sh"]
    assert left_out == 2


@pytest.mark.parametrize(
    ("uploaded", "runs"),
    [
        pytest.param(["*.sh"], ["*.sh"], id="an-object-named-star"),
        pytest.param(["report[1].sh"], ["report[1].sh"], id="brackets"),
        pytest.param(["etl/?.sh"], [], id="question-mark-not-uploaded"),
    ],
)
def test_an_upload_run_launches_exactly_the_uploaded_paths_never_globs(
    uploaded: list[str], runs: list[str]
) -> None:
    """Issue 25: uploading data/*.sh ran every script; report[1].sh ran report1.sh instead of itself."""
    from script_runner.config.params import run_options
    from script_runner.discover.run_scope import narrow
    from script_runner.upload.rules import current_conf

    paths = ["*.sh", "a.sh", "etl/b.sh", "report1.sh", "report[1].sh"]
    result = DiscoveryResult(specs=[{"path": p} for p in paths])
    narrow(result, run_options({}, current_conf(_context({}, [{"uploaded": uploaded}]))), None)
    assert [s["path"] for s in result.specs] == runs


@pytest.mark.skipif(not _AIRFLOW_2, reason="the watcher DAG is Airflow 2.11's (make unit-af2)")
@pytest.mark.usefixtures("wired")
def test_watcher_dag_defers_to_the_upload_trigger_and_triggers_a_run_of_the_uploaded_scripts() -> None:
    from script_runner.config.compat import TaskDeferred
    from script_runner.upload.rules import upload_wiring
    from script_runner.upload.trigger import UploadTrigger
    from script_runner.upload.watch import build_watcher_dag

    wiring = upload_wiring()
    assert wiring is not None
    dag = build_watcher_dag(wiring)
    wait, run = dag.get_task("wait_for_upload"), dag.get_task("run_uploaded")
    with pytest.raises(TaskDeferred) as deferred:
        wait.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, UploadTrigger)
    assert (trigger.subscription, trigger.settle) == ("script-runner-uploads", 3.0)
    paths = wait.execute_complete({}, {"uploaded": ["etl/load.sh", "a.sh"], "uploads": 3, "ignored": 1})
    assert paths == ["etl/load.sh", "a.sh"]

    class TI:
        def xcom_pull(self, task_ids: str) -> Any:
            return paths if task_ids == "wait_for_upload" else None

    conf = run.render_template(run.conf, {"ti": TI()}, jinja_env=dag.get_template_env())
    assert conf == {"uploaded": ["etl/load.sh", "a.sh"], "reason": "upload"}  # a list, not its text
