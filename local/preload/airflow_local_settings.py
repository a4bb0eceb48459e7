"""Worker-side preload for the local stack, on only when ``SR_PRELOAD_PROVIDERS=1`` (benchmark 3b).

Every Airflow process imports ``airflow_local_settings`` at start. The scheduler's LocalExecutor forks its
workers, and each worker forks a process per task: a module imported here is inherited by every task
instead of being imported again by each one (the KubernetesPodOperator and the kubernetes client take
one to two seconds of CPU per task otherwise). On Composer the same line can go in the environment's own
``airflow_local_settings.py``; without it nothing changes but the per-task import.
"""

import importlib

importlib.import_module("airflow.providers.cncf.kubernetes.operators.pod")
# What the run tasks use after their pod (the attempt ledger's one write): the GCS hook and its client.
importlib.import_module("airflow.providers.google.cloud.hooks.gcs")
# The runner's own modules (pydantic models, policies): a task's parse of the DAG file then builds the DAG
# only. The package is found on the DAGs folder's path (as on Composer, where it lives in dags/).
try:
    importlib.import_module("script_runner.dag")
    importlib.import_module("script_runner.tasks")
except ImportError:  # the DAGs folder is not on this process's path: tasks import it themselves
    pass
