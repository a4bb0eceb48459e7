"""Worker-side preload for the local stack, on only when ``SR_PRELOAD_PROVIDERS=1`` (benchmark 3b).

Every Airflow process imports ``airflow_local_settings`` at start. The scheduler's LocalExecutor forks its
workers, and each worker forks a process per task: a module imported here is inherited by every task
instead of being imported again by each one (the KubernetesPodOperator and the kubernetes client take
one to two seconds of CPU per task otherwise). On Composer the same lines can go in the environment's own
``airflow_local_settings.py``; without them nothing changes but the per-task import.
"""

import importlib

importlib.import_module("airflow.providers.cncf.kubernetes.operators.pod")
# What the run tasks use after their pod (the attempt ledger's one write): the GCS hook and its client.
importlib.import_module("airflow.providers.google.cloud.hooks.gcs")
# The runner's own modules (pydantic models, policies): a task's parse of the DAG file then builds the DAG
# only. The package is found on the DAGs folder's path (as on Composer, where it lives in dags/).
# RUNTIME_MODULES are the ones a task imports lazily after the parse (tests/unit/local/test_preload.py
# fails when a run task imports one of the runner's modules that is not here).
RUNTIME_MODULES = (
    "script_runner.dag",
    "script_runner.tasks",
    "script_runner.run.operator",
    # the plan check's identity rules, before every pod
    "script_runner.discover.resolve_identity",
    # the deferrable mode's trigger, built by every deferring task
    "script_runner.run.trigger",
    # the ledger's and the done-markers' plain-HTTP writer, built before every pod
    "script_runner.run.gcs_write",
    # the upload watcher's trigger, built at each parse when runs on upload are wired
    "script_runner.upload.trigger",
)
for _name in RUNTIME_MODULES:
    try:
        importlib.import_module(_name)
    except ImportError:  # the DAGs folder is not on this process's path: tasks import it themselves
        break
