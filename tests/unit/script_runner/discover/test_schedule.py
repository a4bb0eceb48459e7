"""schedule=: cron validation and due-ness in a run's window (Airflow 2 intervals, Airflow 3 fire times)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

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


# -- the DAG's time zone (issue 25): a schedule= reads its cron where the DAG reads its own ---------------


def _context(*, start: datetime, end: datetime, dag: Any = None) -> dict[str, Any]:
    """A scheduled run's task context as discovery reads it (the DAG, when given, is a real one)."""
    return {
        "dag": dag,
        "dag_run": SimpleNamespace(run_type="scheduled"),
        "data_interval_start": start,
        "data_interval_end": end,
    }


def _berlin_dag(schedule: str) -> Any:
    """A real DAG whose cron Airflow reads in Europe/Berlin (an aware start_date: 2.11 and 3.x alike)."""
    import pendulum

    from script_runner.config.compat import DAG

    return DAG(
        dag_id="tz_probe", schedule=schedule, start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Berlin")
    )


def _window(ctx: dict[str, Any], dag_schedule: str) -> Window:
    from script_runner.config.params import RunOptions
    from script_runner.tasks import _window as task_window

    window = task_window(ctx, dag_schedule, RunOptions())
    assert window is not None
    return window


def test_schedule_is_read_in_the_dags_time_zone_in_winter() -> None:
    """Hourly DAG in Berlin (UTC+1 in December): 0 6 * * * is due in the interval holding 05:00 UTC."""
    dag = _berlin_dag("@hourly")
    at_5 = datetime(2026, 12, 7, 5, tzinfo=UTC)
    holding_6_berlin = _window(_context(start=at_5, end=at_5 + timedelta(hours=1), dag=dag), "@hourly")
    assert holding_6_berlin.first_time("0 6 * * *") == at_5
    assert holding_6_berlin.zone == "Europe/Berlin"
    at_6 = datetime(2026, 12, 7, 6, tzinfo=UTC)
    holding_6_utc = _window(_context(start=at_6, end=at_6 + timedelta(hours=1), dag=dag), "@hourly")
    assert holding_6_utc.first_time("0 6 * * *") is None  # 06:00 UTC is 07:00 in Berlin: not due


def test_schedule_not_due_names_the_next_time_across_the_spring_clock_change() -> None:
    """Saturday 28 March 2026 (UTC+1), 06:00 UTC run: the next 06:00 Berlin is Sunday 04:00 UTC (UTC+2)."""
    from script_runner.config.params import RunOptions
    from script_runner.discover.discovery import DiscoveryResult
    from script_runner.discover.run_scope import narrow

    dag = _berlin_dag("@hourly")
    at_6 = datetime(2026, 3, 28, 6, tzinfo=UTC)
    window = _window(_context(start=at_6, end=at_6 + timedelta(hours=1), dag=dag), "@hourly")
    result = DiscoveryResult(specs=[{"path": "daily.sh", "schedule": "0 6 * * *"}], rejected=[])
    narrow(result, RunOptions(), window)
    assert result.specs == []
    (held,) = result.held
    assert held["status"] == "not due"
    assert "cron times in Europe/Berlin" in held["reason"]
    assert held["reason"].endswith("next 2026-03-29T04:00:00Z")


def test_schedule_airflow3_fire_time_window_spans_the_shorter_day_in_the_dags_zone() -> None:
    """Airflow 3's zero-width run of a daily Berlin DAG on 30 March 2026 00:00 (22:00 UTC the day before):
    its window starts at the previous Berlin midnight (23:00 UTC, still winter time), 23 hours long, and
    0 6 * * * is due at 04:00 UTC (summer time)."""
    dag = _berlin_dag("@daily")
    fire = datetime(2026, 3, 29, 22, tzinfo=UTC)
    window = _window(_context(start=fire, end=fire, dag=dag), "@daily")
    assert window.describe() == "(2026-03-28T23:00:00Z, 2026-03-29T22:00:00Z]"
    assert window.first_time("0 6 * * *") == datetime(2026, 3, 29, 4, tzinfo=UTC)
    assert window.first_time("0 0 * * *") == fire  # Berlin's midnight: this run's own fire time
    assert window.first_time("30 23 * * *") == datetime(2026, 3, 29, 21, 30, tzinfo=UTC)


def test_schedule_zone_is_airflows_default_timezone_when_the_context_has_no_dag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__DEFAULT_TIMEZONE", "Europe/Berlin")
    at_5 = datetime(2026, 12, 7, 5, tzinfo=UTC)
    window = _window(_context(start=at_5, end=at_5 + timedelta(hours=1)), "@hourly")
    assert window.zone == "Europe/Berlin"
    assert window.first_time("0 6 * * *") == at_5


def test_schedule_zone_of_a_utc_dag_keeps_utc() -> None:
    import pendulum

    from script_runner.config.compat import DAG

    dag = DAG(dag_id="utc_probe", schedule="@hourly", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    window = _window(_context(start=MONDAY_6, end=MONDAY_7, dag=dag), "@hourly")
    assert window.zone == "UTC"
    assert window.first_time("0 6 * * *") == MONDAY_6
    assert window.why == "data interval"


@pytest.mark.parametrize("bad", ["Mars/Olympus", "not a zone"])
def test_schedule_zone_refuses_what_is_no_time_zone(bad: str) -> None:
    from script_runner.discover.schedule import zone

    with pytest.raises(ValueError, match="is not a time zone"):
        zone(bad)


def test_schedule_cron_times_the_clock_change_skips_or_repeats() -> None:
    """As the author guide says: 02:30 Berlin on the spring night comes at 03:00 summer time (01:00 UTC); on
    the autumn night it exists twice, and each hourly run holding one finds it due."""
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    spring = Window(datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 3, 29, 2, tzinfo=UTC), tz=berlin)
    assert spring.first_time("30 2 * * *") == datetime(2026, 3, 29, 1, tzinfo=UTC)
    for hour in (0, 1):
        start = datetime(2026, 10, 25, hour, tzinfo=UTC)
        autumn = Window(start, start + timedelta(hours=1), tz=berlin)
        assert autumn.first_time("30 2 * * *") == start + timedelta(minutes=30)
