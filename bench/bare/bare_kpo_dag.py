"""Reference for parse-time cost: a two-task airflow DAG mapping the plain KubernetesPodOperator.

Separates what importing the cncf-kubernetes provider costs (paid by any KPO DAG) from what we add.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG, task

with DAG(dag_id="bare_kpo_mapped", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:

    @task
    def items() -> list[list[str]]:
        return [["echo", "1"], ["echo", "2"]]

    KubernetesPodOperator.partial(task_id="pods", image="busybox", name="p").expand(cmds=items())
