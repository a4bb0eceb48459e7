"""Which Airflow the stack runs and the environment of its processes.

The Airflow version comes from the virtualenv named by ``SR_AIRFLOW_VENV`` (default: the one running the
stack); each version gets its own ``AIRFLOW_HOME`` and metadata database, so switching versions never mixes
schemas. :func:`airflow_env` is what Airflow's processes (and anything talking to the stack) see, 3.x's
settings or 2.x's. Imports :mod:`local.config`, :mod:`local.pod_env` and :mod:`local.pubsub`; starts nothing.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import subprocess
from typing import TYPE_CHECKING

from local import config
from local import pubsub as local_pubsub
from local.pod_env import pod_env

if TYPE_CHECKING:
    from pathlib import Path

# Seconds without a task heartbeat before the scheduler fails the task (its worker is gone) and retries it.
HEARTBEAT_TIMEOUT = os.environ.get("SR_HEARTBEAT_TIMEOUT", "60")


@functools.cache
def airflow_version() -> str:
    """The Airflow version installed in the stack's Airflow virtualenv (read without importing Airflow)."""
    if not config.AIRFLOW_VENV:
        from importlib.metadata import version

        return version("apache-airflow")
    out = subprocess.run(
        [
            str(config.VENV_BIN / "python"),
            "-c",
            "from importlib.metadata import version; print(version('apache-airflow'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def airflow_major() -> int:
    """2 or 3: which set of Airflow processes and which REST API the stack runs."""
    return int(airflow_version().split(".")[0])


def airflow_parts() -> list[str]:
    """The Airflow processes of this version, the web/API one first."""
    if airflow_major() >= 3:
        return ["api-server", "scheduler", "dag-processor", "triggerer"]
    return ["webserver", "scheduler", "triggerer"]


def airflow_home() -> Path:
    """``AIRFLOW_HOME``: ``RUN/airflow`` for the default venv, ``RUN/airflow-<version>`` for another one."""
    return config.RUN / ("airflow" if not config.AIRFLOW_VENV else f"airflow-{airflow_version()}")


def airflow_db() -> str:
    """The metadata database: one per Airflow version (a 2.x and a 3.x schema cannot share one)."""
    return "airflow" if not config.AIRFLOW_VENV else "airflow_" + airflow_version().replace(".", "_")


def airflow_env() -> dict[str, str]:
    """Environment of the Airflow processes (and of anything talking to the stack)."""
    secret_file = config.RUN / "airflow" / "secret"
    if not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_hex(24))
    secret = secret_file.read_text().strip()
    kubeconfig = config.RUN / "kube" / "kubeconfig"
    api = f"http://127.0.0.1:{config.PORTS.airflow}"
    env = {
        "AIRFLOW_HOME": str(airflow_home()),
        "AIRFLOW__CORE__DAGS_FOLDER": os.environ.get("SR_DAGS_FOLDER", str(config.ROOT / "dags")),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("SR_PARALLELISM", "16"),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": os.environ.get("SR_PARALLELISM", "16"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://airflow:airflow@127.0.0.1:{config.PORTS.pg}/{airflow_db()}"
        ),
        "AIRFLOW__API_AUTH__JWT_SECRET": secret,
        "AIRFLOW__API__SECRET_KEY": secret,
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__PORT": str(config.PORTS.airflow),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "2",
        # A task whose worker died (no heartbeat) is failed and retried after this many seconds (Airflow's
        # default 300 s, Composer's too); the tasks heartbeat every 2 s here, so a minute is 30 missed beats.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": HEARTBEAT_TIMEOUT,
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
        # A worker's first call to the execution API (3.x) can take over the default 5 s on a loaded
        # machine; the retry then finds the task already running and the task fails (seen on 3.3.1).
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home() / "logs"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(config.PORTS.worker_log),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(config.PORTS.trigger_log),
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(
            {"conn_type": "google_cloud_platform", "extra": {"project": "test-project", "is_anonymous": True}}
        ),
        "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps(
            {
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(kubeconfig), "namespace": "composer-user-workloads"},
            }
        ),
        "STORAGE_EMULATOR_HOST": config.gcs_url(),
        "GCS_BUCKET": config.BUCKET,
        "SCRIPT_RUNNER_DEFAULT_PRESET": "local",  # a test may name another preset in the Variable
        "SCRIPT_RUNNER_SCHEDULE": "none",
        "SCRIPT_RUNNER_RETRY_DELAY": "2s",
        "SCRIPT_RUNNER_EXTRA_ENV": json.dumps(pod_env()),
        "PYTHONPATH": os.pathsep.join(
            # local/preload holds an airflow_local_settings.py that preloads the KPO (a benchmark variant)
            [str(config.ROOT / "dags"), str(config.ROOT)]
            + (
                [str(config.ROOT / "local" / "preload")]
                if os.environ.get("SR_PRELOAD_PROVIDERS") == "1"
                else []
            )
        ),
        "PATH": os.pathsep.join([str(config.VENV_BIN), os.environ.get("PATH", "/usr/bin:/bin")]),
        "SR_KUBE_URL": f"http://127.0.0.1:{config.PORTS.kube}",
        "SR_AIRFLOW_URL": api,
    }
    if local_pubsub.enabled():
        # Runs on upload (operator guide): the DAG's asset watcher pulls the emulator's subscription;
        # whether an upload starts a run is the settings' on_upload (off in the local preset).
        env["PUBSUB_EMULATOR_HOST"] = local_pubsub.host(config.PORTS.pubsub)
        env["SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION"] = local_pubsub.subscription_path()
        env["SCRIPT_RUNNER_UPLOAD_SETTLE"] = os.environ.get("SR_UPLOAD_SETTLE", "2s")
        # The provider's Pub/Sub hook logs two info lines per pull: the watcher pulls every second.
        env["AIRFLOW__LOGGING__NAMESPACE_LEVELS"] = " ".join(
            f"{prefix}airflow.providers.google.cloud.hooks.pubsub=WARNING"
            for prefix in ("", "airflow.task.hooks.")
        )
    if os.environ.get("SR_E2E_DAGS") == "1" and airflow_major() >= 3:
        # The e2e tests' own DAGs (tests/e2e/dags: the runner DAG with an hourly schedule, created paused)
        # in a bundle of their own beside the dags folder; the e2e session sets SR_E2E_DAGS (conftest).
        local_bundle = "airflow.dag_processing.bundles.local.LocalDagBundle"
        env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
            [
                {"name": "dags-folder", "classpath": local_bundle, "kwargs": {}},
                {"name": "e2e-dags", "classpath": local_bundle, "kwargs": {"path": str(E2E_DAGS)}},
            ]
        )
    if airflow_major() < 3:
        # 3.x-only settings would only mislead (2.x reads [webserver] base_url, as Composer sets it)
        for key in _AIRFLOW3_ONLY:
            env.pop(key, None)
        env.update(airflow2_env(secret, api))
    return env


E2E_DAGS = config.ROOT / "tests" / "e2e" / "dags"

_AIRFLOW3_ONLY = (
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API__BASE_URL",
    "AIRFLOW__API__PORT",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL",
    "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT",
)


def airflow2_env(secret: str, api: str) -> dict[str, str]:
    """What Airflow 2 reads instead of the 3.x settings: webserver, v1 REST API, parsing in the scheduler.

    The UI and API let everyone in as Admin (``AUTH_ROLE_PUBLIC`` in the webserver_config.py written by
    :func:`write_webserver_config`), as the 3.x stack's simple auth manager does: local only.
    """
    return {
        "AIRFLOW__WEBSERVER__SECRET_KEY": secret,
        "AIRFLOW__WEBSERVER__BASE_URL": api,  # the report's log links (2.x reads [webserver], 3.x [api])
        "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(config.PORTS.airflow),
        "AIRFLOW__WEBSERVER__WORKERS": "1",  # gunicorn's default 4 workers cost a core on this machine
        "AIRFLOW__WEBSERVER__WORKER_REFRESH_BATCH_SIZE": "0",  # no rolling worker restarts
        "AIRFLOW__WEBSERVER__WEB_SERVER_MASTER_TIMEOUT": "300",
        "AIRFLOW__WEBSERVER__WEB_SERVER_WORKER_TIMEOUT": "300",
        "AIRFLOW__WEBSERVER__CONFIG_FILE": str(airflow_home() / "webserver_config.py"),
        "AIRFLOW__API__AUTH_BACKENDS": "airflow.providers.fab.auth_manager.api.auth.backend.basic_auth",
        # XCom values as JSON in the API (the e2e harness reads discover's plan; 3.x always allows it)
        "AIRFLOW__API__ENABLE_XCOM_DESERIALIZE_SUPPORT": "True",
        "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
        "AIRFLOW__SCHEDULER__SCHEDULER_ZOMBIE_TASK_THRESHOLD": HEARTBEAT_TIMEOUT,  # 2.x's name for it
        "AIRFLOW__SCHEDULER__ZOMBIE_DETECTION_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "False",
        "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "120",
    }


def write_webserver_config() -> Path:
    """Airflow 2's Flask-AppBuilder settings: every visitor is Admin (no login), as in the 3.x stack."""
    path = airflow_home() / "webserver_config.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '"""Written by local/airflow_env.py: the local stack only; every visitor is Admin."""\n'
        "from airflow.providers.fab.auth_manager.security_manager.override import AUTH_DB\n\n"
        "AUTH_TYPE = AUTH_DB\n"
        'AUTH_ROLE_PUBLIC = "Admin"\n'
        "WTF_CSRF_ENABLED = True\n"
    )
    return path


def full_env() -> dict[str, str]:
    return {**os.environ, **airflow_env()}
