"""Imports that moved between Airflow 2.10 and 3.x: the Task SDK first, the old paths as a fallback."""

from __future__ import annotations

try:  # Airflow 3.x
    from airflow.sdk import DAG, Variable, get_current_context, task
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSkipException,
        TaskDeferred,
    )

    AIRFLOW_3 = True
except ImportError:  # pragma: no cover - Airflow 2.10
    from airflow.decorators import task  # type: ignore[no-redef,attr-defined]
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined]
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSkipException,
        TaskDeferred,
    )
    from airflow.models import DAG, Variable  # type: ignore[no-redef]
    from airflow.operators.python import get_current_context  # type: ignore[no-redef]

    AIRFLOW_3 = False

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
]
