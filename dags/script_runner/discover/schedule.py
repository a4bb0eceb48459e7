"""Script schedules (``# runner: schedule=0 6 * * 1``): is a script due in a run?

The DAG runs at the schedule of the ``SCRIPT_RUNNER_SCHEDULE`` setting (the finest any script needs); a
script with ``schedule=`` runs only in the scheduled runs whose data interval holds one of its cron times.
Airflow 2 (and Airflow 3 with data-interval timetables) gives a run the interval ``[start, end)``; Airflow 3's
default cron timetable gives a zero-width interval at the fire time, which here stands for
``(the DAG schedule's previous fire, fire time]``. Manual runs run every selected script.

Cron times are read in the DAG's time zone, as Airflow reads the DAG's own cron (``[core]
default_timezone``, or the zone of an aware ``start_date``): with a Europe/Berlin DAG, ``schedule=0 6 * * *``
is 06:00 in Berlin (05:00 UTC in winter, 04:00 UTC in summer). Windows are still printed in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# Run types whose data interval is a slot of the DAG's schedule (the rest run every selected script).
SCHEDULED_RUN_TYPES = frozenset({"scheduled", "backfill"})
_TICK = timedelta(microseconds=1)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def cron_of(text: str) -> str:
    """The five-field cron expression of a schedule (a preset is expanded).

    :param text: ``0 6 * * 1`` or a preset such as ``@hourly``.
    :raises ValueError: when it is neither.
    """
    expr = PRESETS.get(text.strip().lower(), text.strip())
    if expr.startswith("@"):
        raise ValueError(f"unknown preset {text!r} (known: {', '.join(PRESETS)})")
    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise ValueError(f"{text!r} is not a five-field cron expression")
    try:  # valid fields can still name no time at all (0 6 31 2 *: February 31st)
        croniter(expr, _EPOCH).get_next(datetime)
    except CroniterBadDateError as exc:
        raise ValueError(f"{text!r} names no time that exists (e.g. a day the month never has)") from exc
    return expr


@dataclass(frozen=True)
class Window:
    """The span of time a run stands for: ``[start, end)``, or ``(start, end]`` when ``closed_end``."""

    start: datetime
    end: datetime
    closed_end: bool = False
    why: str = ""
    tz: tzinfo = UTC  # the zone cron times are read in (the DAG's)

    def first_time(self, schedule: str) -> datetime | None:
        """The first cron time of ``schedule`` in this window, in UTC (None: the script is not due).

        :param schedule: a cron expression or preset (already validated), read in the window's zone.
        """
        after = self.start if self.closed_end else self.start - _TICK
        when = _next_fire(cron_of(schedule), after, self.tz)
        inside = when <= self.end if self.closed_end else when < self.end
        return when if inside else None

    def fires_again(self, schedule: str, after: datetime) -> bool:
        """Whether ``schedule`` has another cron time in this window after ``after`` (finer than the DAG).

        :param schedule: a cron expression or preset.
        :param after: a cron time found in the window.
        """
        when = _next_fire(cron_of(schedule), after, self.tz)
        return when <= self.end if self.closed_end else when < self.end

    def next_time(self, schedule: str) -> datetime:
        """The script's next cron time after this window's end, in UTC (for "not due; next ...").

        :param schedule: a cron expression or preset.
        """
        return _next_fire(cron_of(schedule), self.end, self.tz)

    @property
    def zone(self) -> str:
        """The name of the zone cron times are read in (``UTC``, ``Europe/Berlin``)."""
        return zone_name(self.tz)

    def describe(self) -> str:
        """``[a, b)`` or ``(a, b]`` in UTC, as the report and ``plan`` print it."""
        left, right = ("(", "]") if self.closed_end else ("[", ")")
        return f"{left}{_iso(self.start)}, {_iso(self.end)}{right}"


def next_time(schedule: str, after: datetime, tz: tzinfo = UTC) -> datetime:
    """The script's next cron time after ``after``, in UTC (for "not due; next ...").

    :param schedule: a cron expression or preset.
    :param after: a time (aware; naive is UTC).
    :param tz: the zone the cron expression is read in.
    """
    return _next_fire(cron_of(schedule), _utc(after), tz)


def zone(value: Any) -> tzinfo:
    """The zone a DAG's cron is read in, as a ``tzinfo`` croniter follows across DST changes.

    :param value: a zone name (``Europe/Berlin``), a ``tzinfo`` (pendulum's ``Timezone`` of ``dag.timezone``,
        ``ZoneInfo``, a fixed offset) or None / ``""`` (UTC).
    :raises ValueError: for a name that is no known zone.
    """
    if value is None or value == "":
        return UTC
    name = value if isinstance(value, str) else getattr(value, "name", None) or getattr(value, "key", None)
    if isinstance(name, str):
        if name.upper() in ("UTC", "ETC/UTC", "Z"):
            return UTC
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # a fixed offset's name ("+01:00"): the tzinfo itself, below
    if isinstance(value, tzinfo):
        return value
    raise ValueError(f"{value!r} is not a time zone (e.g. Europe/Berlin or UTC)")


def zone_name(tz: tzinfo) -> str:
    """A zone's name as people write it (``UTC``, ``Europe/Berlin``)."""
    if tz is UTC:
        return "UTC"
    name = getattr(tz, "key", None) or getattr(tz, "name", None)
    return str(name) if name else str(tz)


def run_window(
    *,
    run_type: str | None,
    start: datetime | None,
    end: datetime | None,
    dag_schedule: str | None,
    due_at: str | None = None,
    tz: tzinfo = UTC,
) -> Window | None:
    """The window a run's scripts are checked against, or None when every selected script runs.

    :param run_type: the dag run's type (``scheduled``, ``backfill``, ``manual``, ...).
    :param start: its data_interval_start (None when it has none).
    :param end: its data_interval_end.
    :param dag_schedule: the DAG's schedule setting (a cron expression, preset or None).
    :param due_at: the trigger's ``due_at`` (ISO time): run as the scheduled run at that time would.
    :param tz: the DAG's time zone: the DAG's cron and every ``schedule=`` are read in it.
    :raises ValueError: when ``due_at`` is not an ISO time.
    """
    where = "" if tz is UTC else f"; cron times in {zone_name(tz)}"
    if due_at:
        at = _utc(datetime.fromisoformat(due_at.replace("Z", "+00:00")))
        return Window(
            _previous_fire(dag_schedule, at, tz),
            at,
            closed_end=True,
            why=f"as scheduled at {_iso(at)}{where}",
            tz=tz,
        )
    if str(run_type or "").lower().rsplit(".", 1)[-1] not in SCHEDULED_RUN_TYPES or end is None:
        return None
    end = _utc(end)
    begin = _utc(start) if start is not None else end
    if begin < end:
        return Window(begin, end, why=f"data interval{where}", tz=tz)
    return Window(
        _previous_fire(dag_schedule, end, tz),
        end,
        closed_end=True,
        why=f"since the previous run{where}",
        tz=tz,
    )


def _next_fire(expr: str, after: datetime, tz: tzinfo) -> datetime:
    """The first time of ``expr`` (read in ``tz``) after ``after``, in UTC."""
    when: datetime = croniter(expr, after.astimezone(tz)).get_next(datetime)
    return _utc(when)


def _previous_fire(dag_schedule: str | None, at: datetime, tz: tzinfo = UTC) -> datetime:
    """The DAG schedule's fire time before ``at`` (a minute before when the DAG has no cron schedule)."""
    try:
        expr = cron_of(dag_schedule or "")
    except ValueError:
        return at - timedelta(minutes=1)
    when: datetime = croniter(expr, (at - _TICK).astimezone(tz)).get_prev(datetime)
    return _utc(when)


def _utc(when: Any) -> datetime:
    """A plain ``datetime`` in UTC. Airflow's context gives pendulum datetimes, whose time zone croniter
    drops (it then returns naive times that cannot be compared with the window's)."""
    stamp = datetime.fromisoformat(str(when)) if not isinstance(when, datetime) else when
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    return datetime(*stamp.timetuple()[:6], stamp.microsecond, tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
