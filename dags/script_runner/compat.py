"""Imports that moved between Airflow 2.10 and 3.x: the Task SDK first, the old paths as a fallback.

Each group is resolved on its own: Airflow 3.0/3.1 have ``airflow.sdk`` but still keep the task exceptions
in ``airflow.exceptions``; newer releases move them to ``airflow.sdk.exceptions``.
"""

from __future__ import annotations

try:  # Airflow 3.x
    from airflow.sdk import DAG, Variable, get_current_context, task

    AIRFLOW_3 = True
except ImportError:  # pragma: no cover - Airflow 2.10
    from airflow.decorators import task  # type: ignore[no-redef,attr-defined]
    from airflow.models import DAG, Variable  # type: ignore[no-redef]
    from airflow.operators.python import get_current_context  # type: ignore[no-redef]

    AIRFLOW_3 = False

try:  # Airflow 3.2+
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:  # pragma: no cover - Airflow 2.10 to 3.1
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined]
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSkipException,
        TaskDeferred,
    )


def variable_get(key: str) -> str | None:
    """An Airflow Variable or None; the default is positional (``default_var`` in 2.x, ``default`` in 3.x)."""
    value = Variable.get(key, None)
    return None if value is None else str(value)


__all__ = [
    "AIRFLOW_3",
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSkipException",
    "TaskDeferred",
    "Variable",
    "get_current_context",
    "task",
    "variable_get",
]
