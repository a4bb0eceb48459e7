"""Everything that differs between the Airflow versions we support (2.11 to 3.4), in one place.

Imports that moved: the Task SDK first, the old paths as a fallback. Each group is resolved on its own:
Airflow 3.0/3.1 have ``airflow.sdk`` but still keep the task exceptions in ``airflow.exceptions``; newer
releases move them to ``airflow.sdk.exceptions``. Behaviour that moved (task states of a run, the UI's
base URL and link shapes, the retry backoff argument) is behind a function here, so no caller guesses the
version. Nothing is dropped silently: where a version lacks a feature, the function says so in the log and
the operator guide's table says so too. A KubernetesPodOperator argument that not every supported provider
has is looked up here as well (:func:`quiet_failure_kwargs`).
"""

from __future__ import annotations

import inspect
import logging
from functools import cache
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

try:  # Airflow 3.x
    from airflow.sdk import DAG, BaseOperator, Param, Variable, get_current_context, task

    AIRFLOW_3 = True
except ImportError:  # pragma: no cover - Airflow 2.10
    from airflow.decorators import task  # type: ignore[no-redef,attr-defined]
    from airflow.models import DAG, BaseOperator, Variable  # type: ignore[no-redef]
    from airflow.models.param import Param  # type: ignore[no-redef]
    from airflow.operators.python import get_current_context  # type: ignore[no-redef]

    AIRFLOW_3 = False

try:  # Airflow 3.2+
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSkipException,
        AirflowTaskTimeout,
        TaskDeferred,
    )
except ImportError:  # pragma: no cover - Airflow 2.10 to 3.1
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined]
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSkipException,
        AirflowTaskTimeout,
        TaskDeferred,
    )


try:  # Airflow 3.x
    from airflow.sdk import BaseNotifier
except ImportError:  # pragma: no cover - Airflow 2
    from airflow.notifications.basenotifier import BaseNotifier  # type: ignore[no-redef,attr-defined]


def airflow_version() -> tuple[int, int]:
    """(major, minor) of the running Airflow."""
    import airflow

    major, minor = (int(p) for p in airflow.__version__.split(".")[:2])
    return major, minor


def asset_or_time_schedule(cron: str, assets: list[Any]) -> Any:
    """Airflow 3's schedule "on these assets, or at these times" (``AssetOrTimeSchedule`` on a cron).

    The built-in timetables joined ``airflow.sdk`` in Airflow 3.2 (apache/airflow#58669, "Implement
    timetables in SDK"); Airflow 3.0 and 3.1 have them in core's ``airflow.timetables`` only, and importing
    them from ``airflow.sdk`` there fails the whole DAG file.

    :param cron: the time schedule, read in Airflow's ``default_timezone`` as a plain cron schedule is (the
        DAG's ``start_date`` is naive), so ``schedule=`` headers mean the same with and without upload runs.
    :param assets: the assets whose events also start a run.
    """
    try:  # Airflow 3.2+
        from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.timetables.assets import AssetOrTimeSchedule  # type: ignore[assignment,no-redef,attr-defined,unused-ignore]
        from airflow.timetables.trigger import CronTriggerTimetable  # type: ignore[assignment,no-redef,attr-defined,unused-ignore]
    timetable = CronTriggerTimetable(cron, timezone=default_timezone())
    return AssetOrTimeSchedule(timetable=timetable, assets=assets)


def default_timezone() -> str:
    """Airflow's ``[core] default_timezone`` as a zone name (``utc`` when unset; ``system``: this machine's).

    A naive ``start_date`` is read in it, and a DAG's cron with it (2.x and 3.x alike).
    """
    from airflow.configuration import conf

    name = str(conf.get("core", "default_timezone", fallback="utc") or "utc").strip()
    if name.lower() == "system":
        import pendulum

        return str(pendulum.tz.local_timezone().name)
    return name


def dag_timezone(context: Any) -> Any:
    """The zone a running DAG's cron is read in: ``dag.timezone`` (a pendulum ``Timezone`` on 2.10 to 3.x:
    the ``start_date``'s zone, or ``default_timezone`` for a naive one), else ``default_timezone``.

    :param context: the task's context.
    """
    zone = getattr(context.get("dag"), "timezone", None)
    return zone if zone is not None else default_timezone()


def retry_backoff() -> Any:
    """``retry_exponential_backoff``: a multiplier (2.0 doubles the delay) from Airflow 3.3 on, a flag before.

    Before 3.3 the flag ``True`` doubles the delay each try; from 3.3 on the argument is the multiplier and
    ``True`` would mean 1.0 (no growth), so the same doubling is written as 2.0.
    """
    return 2.0 if airflow_version() >= (3, 3) else True


def task_states(ti: Any, *, run_id: str, task_ids: list[str]) -> dict[str, Any] | None:
    """Final Airflow states of the given tasks in one run, by ``"<task_id>_<map_index>"``.

    Airflow 3.1+ answers through the Task SDK (``get_task_states``). Airflow 2 has no such call, but its
    task runs next to the metadata database: the states are read from there. ``None`` when neither works
    (Airflow 3.0, or a database error): the caller reports from its own records and says so.

    :param ti: the running task instance (the report task's).
    :param run_id: the DAG run to read.
    :param task_ids: the (mapped) tasks whose instances to read.
    """
    if hasattr(ti, "get_task_states"):  # Airflow 3.1+
        try:
            raw = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id], task_ids=task_ids)
            return dict((raw or {}).get(run_id, {}))
        except Exception:
            log.warning("get_task_states failed", exc_info=True)
            return None
    if AIRFLOW_3:  # Airflow 3.0: no database access from a task, and no SDK call yet
        return None
    try:
        return _task_states_from_db(ti.dag_id, run_id, task_ids)
    except Exception:
        log.warning("could not read task states from the metadata database", exc_info=True)
        return None


def _task_states_from_db(dag_id: str, run_id: str, task_ids: list[str]) -> dict[str, Any]:
    """Airflow 2: the states from the task_instance table (the task runs with database access)."""
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(TI.task_id, TI.map_index, TI.state)
            .filter(TI.dag_id == dag_id, TI.run_id == run_id, TI.task_id.in_(task_ids))
            .all()
        )
    return {f"{task_id}_{map_index}": state for task_id, map_index, state in rows}


def task_instance_state(*, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    """One task instance's current state, from where this Airflow lets a trigger read it (None: unknown).

    Airflow 3.1+: the Task SDK's ``get_task_states`` (the triggerer's supervisor answers it). Airflow 2: the
    metadata database (the triggerer has access). Synchronous: call it through ``sync_to_async``.

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param task_id: the task.
    :param map_index: the mapped index (-1 for an unmapped task).
    """
    if AIRFLOW_3:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        raw = RuntimeTaskInstance.get_task_states(dag_id=dag_id, task_ids=[task_id], run_ids=[run_id])
        key = f"{task_id}_{map_index}" if map_index >= 0 else task_id
        return (raw or {}).get(run_id, {}).get(key)
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(
            session.query(TI.state)
            .filter(
                TI.dag_id == dag_id, TI.run_id == run_id, TI.task_id == task_id, TI.map_index == map_index
            )
            .statement
        )


def ui_task_link_template(dag_id: str, run_id: str) -> str:
    """A link to one mapped task's log in this Airflow's UI, with ``{task_id}`` and ``{map_index}`` left open.

    Airflow 3's UI lives at ``[api] base_url`` with paths ``/dags/D/runs/R/tasks/T/mapped/I``; Airflow 2's
    at ``[webserver] base_url`` with the grid view's query string. Empty when the base URL is not set.

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    """
    from airflow.configuration import conf

    dag, run = quote(dag_id, safe=""), quote(run_id, safe="")
    if AIRFLOW_3:
        base = str(conf.get("api", "base_url", fallback="") or "").rstrip("/")
        return f"{base}/dags/{dag}/runs/{run}/tasks/{{task_id}}/mapped/{{map_index}}" if base else ""
    base = str(conf.get("webserver", "base_url", fallback="") or "").rstrip("/")
    if not base:
        return ""
    return f"{base}/dags/{dag}/grid?dag_run_id={run}&task_id={{task_id}}&map_index={{map_index}}&tab=logs"


def variable_get(key: str) -> str | None:
    """An Airflow Variable or None; the default is positional (``default_var`` in 2.x, ``default`` in 3.x)."""
    value = Variable.get(key, None)
    return None if value is None else str(value)


def parent_execute_kwargs(operator: object) -> dict[str, Any]:
    """Keyword arguments that let an operator's ``execute`` call its parent's ``execute`` on Airflow 2.

    Airflow 2's ExecutorSafeguard wraps every ``execute`` and accepts a call only when the task instance
    handed it a sentinel keyword, named after the operator's class. It keeps that sentinel per class name,
    so a subclass calling ``super().execute(context)`` is taken for an operator run outside a task: a
    warning on every launch, an error with ``allow_nested_operators=False``. Handing the parent the same
    sentinel, as the task instance does, is what the safeguard checks for; the wrapper removes it before
    the parent's own code runs. Airflow 3's safeguard follows the call itself (a context variable) and
    needs nothing: an empty dict.

    :param operator: the operator whose ``execute`` is running (its class names the sentinel).
    """
    if AIRFLOW_3:
        return {}
    from airflow.models.base import _sentinel  # type: ignore[attr-defined]

    return {f"{type(operator).__name__}__sentinel": _sentinel}


@cache
def quiet_failure_kwargs() -> dict[str, Any]:
    """Keep KPO from printing the whole pod (every env value) in the error of a failed pod.

    Env values may hold credentials or personal data (``env=`` directives); the script's log, its
    container state and the pod's events are still logged. The switch ``log_pod_spec_on_failure`` came
    with provider 7.x (apache/airflow#31595), so every 10.x has it; it is still passed only where it exists.
    """
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    params = inspect.signature(KubernetesPodOperator.__init__).parameters
    return {"log_pod_spec_on_failure": False} if "log_pod_spec_on_failure" in params else {}


@cache
def reattach_kwargs() -> dict[str, Any]:
    """KPO's switch to reattach to the task's running pod after a lost worker, under the provider's name.

    cncf-kubernetes 10.20+ deprecates ``reattach_on_restart`` (a warning on every task) for ``durable``,
    which on Airflow 3.3+ reattaches by the pod name it saved for the task, and which below 3.3 has no
    effect and warns when set; both default to on. So: ``durable`` on Airflow 3.3+ with such a provider,
    nothing below 3.3 with it (its default is the label lookup), ``reattach_on_restart`` with older ones
    (Composer's 10.11 and 10.14). Whatever the lookup finds is checked against the try
    (:func:`~script_runner.run.adoption.foreign_pod`), since a saved name can name another run's pod.
    """
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    if "durable" not in inspect.signature(KubernetesPodOperator.__init__).parameters:
        return {"reattach_on_restart": True}
    return {"durable": True} if airflow_version() >= (3, 3) else {}


__all__ = [
    "AIRFLOW_3",
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "BaseNotifier",
    "BaseOperator",
    "Param",
    "TaskDeferred",
    "Variable",
    "airflow_version",
    "dag_timezone",
    "default_timezone",
    "get_current_context",
    "parent_execute_kwargs",
    "quiet_failure_kwargs",
    "reattach_kwargs",
    "retry_backoff",
    "task",
    "task_instance_state",
    "task_states",
    "ui_task_link_template",
    "variable_get",
]
