"""Imports that moved between Airflow 2.10 and 3.x: the Task SDK first, the old paths as a fallback.

Each group is resolved on its own: Airflow 3.0/3.1 have ``airflow.sdk`` but still keep the task exceptions
in ``airflow.exceptions``; newer releases move them to ``airflow.sdk.exceptions``.
"""

from __future__ import annotations

from typing import Any

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


__all__ = [
    "AIRFLOW_3",
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "BaseOperator",
    "Param",
    "TaskDeferred",
    "Variable",
    "get_current_context",
    "parent_execute_kwargs",
    "task",
    "variable_get",
]
