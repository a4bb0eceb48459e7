"""Benchmark 3's third column: the plain KubernetesPodOperator mapped over N trivial commands.

What any "one pod per script" DAG pays on the same stack, without our discovery, policies, ledger or report:
separates the KubernetesPodOperator's own cost from what gcs-script-runner adds. N from BARE_KPO_ITEMS.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG, task

ITEMS = int(os.environ.get("BARE_KPO_ITEMS", "10"))
DEFERRABLE = os.environ.get("BARE_KPO_DEFERRABLE") == "1"

with DAG(dag_id="bare_kpo_pods", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:

    @task
    def commands() -> list[list[str]]:
        return [["bash", "-c", f"echo job {i}"] for i in range(ITEMS)]

    KubernetesPodOperator.partial(
        task_id="run_pods",
        image="localhost/script-runner:local",
        name="bare",
        namespace="composer-user-workloads",
        kubernetes_conn_id="kubernetes_default",
        get_logs=True,
        on_finish_action="delete_pod",
        do_xcom_push=False,
        deferrable=DEFERRABLE,
        # the double's namespace enforces Pod Security "restricted", as Composer 3 / GKE do for ours
        security_context={
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        container_security_context={"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    ).expand(cmds=commands())
