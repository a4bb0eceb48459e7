"""schedule=: cron validation and due-ness in a run's window (Airflow 2 intervals, Airflow 3 fire times)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from script_runner.discover.schedule import Window, cron_of, run_window

MONDAY_6 = datetime(2026, 12, 7, 6, tzinfo=UTC)  # a Monday
MONDAY_7 = datetime(2026, 12, 7, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expr"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@Monthly", "0 0 1 * *"),
        ("0 6 * * 1", "0 6 * * 1"),
    ],
)
def test_schedule_presets_and_cron(text: str, expr: str) -> None:
    assert cron_of(text) == expr


@pytest.mark.parametrize("bad", ["0 6 * *", "@fortnightly", "61 * * * *", "every monday", ""])
def test_schedule_refuses_what_is_not_cron(bad: str) -> None:
    with pytest.raises(ValueError, match=r"cron expression|unknown preset"):
        cron_of(bad)


def test_schedule_due_in_an_airflow2_data_interval_start_inclusive_end_exclusive() -> None:
    window = run_window(run_type="scheduled", start=MONDAY_6, end=MONDAY_7, dag_schedule="@hourly")
    assert window is not None
    assert window.first_time("0 6 * * 1") == MONDAY_6
    assert window.first_time("30 * * * *") == datetime(2026, 12, 7, 6, 30, tzinfo=UTC)
    assert window.first_time("0 7 * * *") is None  # the end belongs to the next interval
    assert window.first_time("@monthly") is None
    assert window.describe() == "[2026-12-07T06:00:00Z, 2026-12-07T07:00:00Z)"


def test_schedule_due_at_an_airflow3_fire_time_since_the_previous_fire() -> None:
    # Airflow 3's default cron timetable: data_interval_start == data_interval_end == the fire time
    window = run_window(run_type="DagRunType.SCHEDULED", start=MONDAY_6, end=MONDAY_6, dag_schedule="@hourly")
    assert window == Window(datetime(2026, 12, 7, 5, tzinfo=UTC), MONDAY_6, closed_end=True, why=window.why)
    assert window.first_time("0 6 * * 1") == MONDAY_6
    assert window.first_time("0 5 * * 1") is None  # belonged to the 05:00 run


def test_schedule_every_script_runs_in_a_manual_run_unless_due_at_is_given() -> None:
    assert run_window(run_type="manual", start=MONDAY_6, end=MONDAY_6, dag_schedule="@hourly") is None
    assert run_window(run_type="asset_triggered", start=None, end=None, dag_schedule=None) is None
    window = run_window(
        run_type="manual", start=None, end=None, dag_schedule=None, due_at="2026-12-07T06:00:00Z"
    )
    assert window is not None
    assert window.first_time("0 6 * * 1") == MONDAY_6
    assert window.first_time("@monthly") is None
    with pytest.raises(ValueError, match="Invalid isoformat"):
        run_window(run_type="manual", start=None, end=None, dag_schedule=None, due_at="next monday")


def test_schedule_backfill_runs_use_their_interval() -> None:
    window = run_window(run_type="backfill", start=MONDAY_6, end=MONDAY_7, dag_schedule="@hourly")
    assert window is not None
    assert window.first_time("0 6 * * *") == MONDAY_6


@pytest.mark.parametrize(
    "width", [pytest.param(0, id="airflow3-fire-time"), pytest.param(1, id="data-interval")]
)
def test_schedule_windows_of_real_runs_take_airflows_pendulum_datetimes(width: int) -> None:
    """A real scheduled or backfill run's context holds pendulum datetimes (not due_at's plain ones):
    discovery once crashed on them ("can't compare offset-naive and offset-aware datetimes")."""
    import pendulum

    start = pendulum.datetime(2026, 12, 7, 6, tz="UTC")
    window = run_window(run_type="backfill", start=start, end=start.add(hours=width), dag_schedule="@hourly")
    assert window is not None
    assert window.first_time("0 6 * * *") == MONDAY_6
    assert window.first_time("0 8 * * *") is None
