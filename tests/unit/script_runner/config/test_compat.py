"""compat: what differs between Airflow versions, checked on whichever Airflow runs the tests.

`make unit` runs these on the default Airflow, `make unit-af2` and `make compat` on every supported set.
"""

from __future__ import annotations

from typing import Any

import pytest

from script_runner.config import compat
from script_runner.report.build import build_report


@pytest.fixture
def two_bases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both base URLs set, to different hosts: only this version's own setting may be used."""
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://api-server.example/")
    monkeypatch.setenv("AIRFLOW__WEBSERVER__BASE_URL", "http://webserver.example/")


def test_compat_log_link_uses_this_airflows_ui(two_bases: None) -> None:
    template = compat.ui_task_link_template("gcs_script_runner", "manual__2026-01-01T00:00:00+00:00")
    link = template.format(task_id="run_scripts", map_index=3)
    run = "manual__2026-01-01T00%3A00%3A00%2B00%3A00"
    if compat.AIRFLOW_3:
        assert (
            link == f"http://api-server.example/dags/gcs_script_runner/runs/{run}/tasks/run_scripts/mapped/3"
        )
    else:  # 2.x has no [api] base_url: its UI is the webserver's grid view
        assert link == (
            f"http://webserver.example/dags/gcs_script_runner/grid?dag_run_id={run}"
            "&task_id=run_scripts&map_index=3&tab=logs"
        )


def test_compat_log_link_is_empty_without_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "")
    monkeypatch.setenv("AIRFLOW__WEBSERVER__BASE_URL", "")
    assert compat.ui_task_link_template("d", "r") == ""


def test_compat_report_fills_the_template_per_task(two_bases: None) -> None:
    report = build_report(
        dag_id="d",
        run_id="r",
        source="gs://b/data/",
        shards=[[{"path": "a.sh"}], [{"path": "b.sh"}]],
        rejected=[],
        attempts={},
        states={},
        log_url=compat.ui_task_link_template("d", "r"),
    )
    links = {row["path"]: row["log"] for row in report["scripts"]}
    assert "run_scripts_1" in links["b.sh"]
    assert "{" not in links["a.sh"] + links["b.sh"]


def test_compat_retry_backoff_is_the_doubling_this_airflow_understands() -> None:
    # 3.3 made the argument a multiplier (True would be 1.0: no growth); before, True doubles the delay
    expected: Any = 2.0 if compat.airflow_version() >= (3, 3) else True
    assert compat.retry_backoff() == expected
    assert type(compat.retry_backoff()) is type(expected)


class _SdkTaskInstance:
    dag_id = "d"

    def get_task_states(self, *, dag_id: str, run_ids: list[str], task_ids: list[str]) -> dict[str, Any]:
        assert (dag_id, run_ids, task_ids) == ("d", ["r"], ["run_scripts"])
        return {"r": {"run_scripts_0": "success", "run_scripts_1": None}}


def test_compat_task_states_through_the_task_sdk() -> None:
    states = compat.task_states(_SdkTaskInstance(), run_id="r", task_ids=["run_scripts"])
    assert states == {"run_scripts_0": "success", "run_scripts_1": None}


def test_compat_base_notifier_is_airflows_own() -> None:
    try:
        from airflow.sdk import BaseNotifier
    except ImportError:
        from airflow.notifications.basenotifier import BaseNotifier
    assert compat.BaseNotifier is BaseNotifier
