"""Names and limits shared by the package. One place so the DAG, the pod builder and the tests agree."""

from __future__ import annotations

from typing import Final

# The DAG and its task ids: the report and the CLI look tasks up by these.
DAG_ID: Final = "gcs_script_runner"
DISCOVER_TASK_ID: Final = "discover"
RUN_TASK_ID: Final = "run_scripts"
REPORT_TASK_ID: Final = "report"

# Airflow Variable holding a JSON object of settings (overrides the preset, overridden by env).
SETTINGS_VARIABLE: Final = "script_runner_settings"
# Environment variables: SCRIPT_RUNNER_<FIELD> overrides one setting; the preset is picked by this one.
ENV_PREFIX: Final = "SCRIPT_RUNNER_"
PRESET_ENV: Final = "SCRIPT_RUNNER_PRESET"

# Header directives: only the first HEADER_LINES lines / max_header_bytes bytes are read.
DIRECTIVE_PREFIX: Final = "runner:"
HEADER_LINES: Final = 40
RUNNERIGNORE: Final = ".runnerignore"

# Kubernetes object limits (RFC 1123 label / DNS names).
POD_NAME_MAX: Final = 63
LABEL_VALUE_MAX: Final = 63

# Labels: the recommended app.kubernetes.io keys plus ours (scripts are selectable by path hash).
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_SCRIPT: Final = "script-runner.io/script"
LABEL_SCRIPT_HASH: Final = "script-runner.io/script-hash"
ANNOTATION_SCRIPT_PATH: Final = "script-runner.io/script-path"
ANNOTATION_GENERATION: Final = "script-runner.io/generation"
# Honoured only by the local Kubernetes double (see local/kube_double/README.md).
ANNOTATION_LOCAL_FAULT: Final = "script-runner.local/fault"

APP_NAME: Final = "gcs-script-runner"

# The runner image contract (docs/DESIGN.md).
ENTRYPOINT: Final = "/opt/runner/entrypoint"
WORKDIR: Final = "/work"
CONTAINER_NAME: Final = "base"  # KPO's base container name

# Entrypoint exit codes (runner_image/entrypoint).
EXIT_CONFIG: Final = 64
EXIT_CHECKSUM: Final = 65
EXIT_TEMPFAIL: Final = 75
EXIT_NOPERM: Final = 77
EXIT_SKIPPED: Final = 99
EXIT_OOM: Final = 137

# Composer namespaces and kube config.
COMPOSER3_NAMESPACE: Final = "composer-user-workloads"
COMPOSER3_KUBE_CONFIG: Final = "/home/airflow/composer_kube_config"
COMPOSER_DATA_MOUNT: Final = "/home/airflow/gcs/data"

# Airflow's default [core] max_map_length: one mapped task may expand to at most this many instances.
DEFAULT_MAX_MAP_LENGTH: Final = 1024

# Environment names an `env=` directive may not set. Pod env reaches the runner's entrypoint and tools (bash,
# gsutil/gcloud, the loader) before the script, so these would change how the runner itself fetches,
# checks and runs the script, or whose credentials it uses. Name -> why (the rejection message says it).
RESERVED_ENV_NAMES: Final[dict[str, str]] = {
    "PATH": "it decides which programs run, the runner's own tools included",
    "LD_PRELOAD": "it loads a library into every program in the pod",
    "LD_LIBRARY_PATH": "it changes the shared libraries every program in the pod loads",
    "BASH_ENV": "bash runs that file before the runner's entrypoint and the script",
    "ENV": "sh runs that file when it starts",
    "HOME": "the runner sets it to a writable folder; the cloud tools keep credentials and config there",
    "SHELLOPTS": "it changes bash options in the runner's entrypoint",
    "BASHOPTS": "it changes bash options in the runner's entrypoint",
    "IFS": "it changes how bash splits words in the runner's entrypoint",
    "PS4": "bash expands it (and runs what it contains) on every traced line",
    "PROMPT_COMMAND": "bash runs it",
    "PYTHONPATH": "it changes the Python modules gsutil and gcloud load",
    "PYTHONHOME": "it changes the Python that gsutil and gcloud run on",
}
RESERVED_ENV_PREFIXES: Final[dict[str, str]] = {
    "RUNNER_": "variables are the runner's own contract (script, generation, checksum, state)",
    "CLOUDSDK_": "variables configure gcloud, gsutil and bq (endpoints, credentials, project)",
    "GOOGLE_": "variables set Google client credentials and project",
    "GCE_METADATA": "variables redirect where the Workload Identity token comes from",
    "BOTO_": "variables configure gsutil (credentials, endpoints)",
    "STORAGE_EMULATOR_HOST": "variables redirect every Cloud Storage call",
    "KUBERNETES_": "variables are the pod's view of the cluster API",
    "AIRFLOW_": "variables are Airflow's configuration and context",
}
# Reserved in `env=` and in the settings' `extra_env` alike: they change how the C library, TLS, curl and
# bash behave for every program in the pod (the runner's fetch, checksum and identity steps included), or are
# the runner library's own internals. Exact names, then prefixes and suffixes matched in any case.
RESERVED_EVERYWHERE_NAMES: Final[dict[str, str]] = {
    "LD_AUDIT": "it loads a library into every program in the pod",
    "GCONV_PATH": "it loads code into every program that converts character sets",
    "GLIBC_TUNABLES": "it changes the C library's behaviour in every program in the pod",
    "SSL_CERT_FILE": "it replaces the certificates TLS trusts (the runner's downloads could be intercepted)",
    "SSL_CERT_DIR": "it replaces the certificates TLS trusts (the runner's downloads could be intercepted)",
    "REQUESTS_CA_BUNDLE": "it replaces the certificates gcloud and gsutil trust",
    "OPENSSL_CONF": "it loads an OpenSSL configuration (and its engines) into every TLS client",
    "BASH_XTRACEFD": "it redirects bash's trace into a file descriptor of the runner",
    "TMPDIR": "the runner keeps its own files under /tmp; the script's scratch space is $RUNNER_WORKDIR",
}
RESERVED_EVERYWHERE_PREFIXES: Final[dict[str, str]] = {
    "CURL_": "variables configure curl, which the runner library uses for every Google API call",
    "_RUNNER_": "variables are the runner library's internals",
    "_ENTRY_": "variables are the runner entrypoint's internals",
}
RESERVED_EVERYWHERE_SUFFIXES: Final[dict[str, str]] = {
    "_PROXY": "variables send the runner's own API calls (tokens included) through another host",
}


def run_task_id(index: int) -> str:
    """The mapped run task of shard ``index``: ``run_scripts``, then ``run_scripts_1``, ``_2``, …

    :param index: the shard's index.
    """
    return RUN_TASK_ID if index == 0 else f"{RUN_TASK_ID}_{index}"


def producer_task_id(index: int) -> str:
    """The task that hands shard ``index`` (from 1) to its run task.

    :param index: the shard's index.
    """
    return f"shard_{index}"
