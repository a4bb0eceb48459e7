"""What each runner setting means, for people: the settings reference (docs/reference/settings.md) is
generated from these, the model's fields and the presets (``python -m script_runner.cli.reference``).

A test fails when a field of :class:`~script_runner.config.settings.RunnerSettings` has no entry here.
"""

from __future__ import annotations

from typing import Final

# Field -> (group, what it does). Groups order the reference's sections.
DESCRIPTIONS: Final[dict[str, tuple[str, str]]] = {
    "preset": ("where", "the preset whose defaults apply: composer3, composer2, gke or local"),
    "source": (
        "where",
        "where the scripts are: gs://bucket/prefix/ (default gs://$GCS_BUCKET/data/); "
        "file:///home/airflow/gcs/X is read as gs://$GCS_BUCKET/X, other file:// folders are refused for a "
        "run (plan --source file:///dir/ still plans a checkout)",
    ),
    "include": ("where", "globs of the files that are scripts (paths under the source)"),
    "exclude": ("where", "globs left out, on top of a .runnerignore file in the source"),
    "namespace": ("cluster", "the pods' namespace (composer3: only composer-user-workloads)"),
    "kubernetes_conn_id": ("cluster", "the Airflow connection to the cluster"),
    "config_file": ("cluster", "a kube config file (composer3: Composer's)"),
    "in_cluster": ("cluster", "use the in-cluster configuration (composer2)"),
    "cluster_context": ("cluster", "the kube config context"),
    "deferrable": (
        "cluster",
        "wait for pods in the triggerer instead of a worker slot (docs/operator-guide.md, Sizing and cost)",
    ),
    "startup_check_interval": (
        "cluster",
        "seconds between pod-phase checks while a pod starts (the provider's 5 would idle short scripts)",
    ),
    "gcp_conn_id": ("cluster", "the Airflow connection used for Google APIs (the state bucket)"),
    "image": ("identity", "the runner image every script runs in (required outside local)"),
    "image_allowlist": ("identity", "globs of other images a script may name with image="),
    "service_account": ("identity", "the pods' Kubernetes service account when a script names none"),
    "service_account_allowlist": (
        "identity",
        "what service_account= may name: Kubernetes service accounts (ksa), or Google service accounts as "
        'a map short name -> email or a list of emails (impersonate), e.g. {"loader": "loader@P.iam..."}',
    ),
    "identity_mode": (
        "identity",
        "ksa: service_account= is the pod's Kubernetes service account (Workload Identity); impersonate: a "
        "Google service account the pod's identity impersonates (Composer 3)",
    ),
    "identity_bindings": (
        "identity",
        "which folders may name which identities and secrets: folder or glob -> "
        '{"service_accounts": [...], "secrets": [...]}; an account must be allowlisted AND bound to the '
        "script's folder; none: no script may name a service account",
    ),
    "secrets": ("identity", "short names for secret=: name -> projects/P/secrets/S[/versions/V]"),
    "cpu": ("defaults", "a script's cpu when it says none"),
    "memory": ("defaults", "a script's memory when it says none"),
    "ephemeral_storage": ("defaults", "a script's scratch disk when it says none"),
    "timeout": ("defaults", "a script's timeout when it says none"),
    "start_timeout": ("defaults", "a script's start_timeout when it says none"),
    "retries": ("defaults", "a script's retries when it says none"),
    "retry_delay": ("defaults", "a script's first retry delay when it says none (doubled each retry)"),
    "max_retry_delay": ("caps", "the longest retry delay (the doubling stops there)"),
    "max_cpu": ("caps", "the most cpu= a script may ask (more is rejected, not lowered)"),
    "max_memory": ("caps", "the most memory= (and the cap of an oom_retry raise)"),
    "max_ephemeral_storage": ("caps", "the most ephemeral_storage="),
    "max_timeout": ("caps", "the longest timeout="),
    "max_retries": ("caps", "the most retries="),
    "autopilot": ("cluster", "bend resources up to GKE Autopilot's rules (composer2), shown by plan"),
    "composer3_rules": (
        "cluster",
        "Composer 3's rules: resources bent up to supported values, above its maximums rejected, no custom "
        "Kubernetes service accounts",
    ),
    "max_header_bytes": ("discovery", "bytes of each script read for its header"),
    "discovery_concurrency": ("discovery", "header reads at once"),
    "max_scripts": ("discovery", "the most scripts a run launches (more: nothing is launched)"),
    "state_bucket": ("state", "the bucket of markers, ledger, reports (default: the source's bucket)"),
    "state_root": ("state", "the prefix of all of the runner's objects in the state bucket"),
    "rerun": ("state", "ignore done-markers in every run (the trigger form's rerun does it for one run)"),
    "oom_memory_factor": ("policies", "memory x this after an OOMKilled attempt, with oom_retry=true"),
    "max_evictions": ("policies", "evictions and preemptions re-run without spending a retry"),
    "eviction_delay": (
        "policies",
        "wait before re-running an evicted or preempted pod (shorter races Airflow's scheduler, "
        "apache/airflow#71172)",
    ),
    "dependency_poll": (
        "policies",
        "how often a script with after= looks at its dependencies again, holding no worker slot (at least "
        "15s: a shorter reschedule races Airflow's scheduler)",
    ),
    "max_dependency_wait": ("policies", "how old a run may get while a script still waits for after="),
    "execution_timeout": (
        "policies",
        "Airflow's timeout of each script's task (e.g. 2h); unset: the script's timeout + start_timeout + 5m",
    ),
    "notifier": ("report", "dotted path of an Airflow BaseNotifier subclass for failures and error events"),
    "notifier_kwargs": ("report", "the notifier's arguments"),
    "on_upload": ("report", "runs on upload, while wired (off: notifications are read and dropped)"),
    "fail_run_on_problems": (
        "report",
        "fail the report task (and so the run) when a script failed or was rejected",
    ),
    "local_faults": ("cluster", "honour fault= directives (the local stack only)"),
    "extra_env": ("pods", "environment for every pod (no secrets: use secret= or env_from_secrets)"),
    "env_from_config_maps": (
        "pods",
        "ConfigMaps in the pods' namespace whose keys become every pod's environment",
    ),
    "env_from_secrets": ("pods", "Kubernetes Secrets whose keys become every pod's environment"),
    "pod_labels": ("pods", "labels added to every pod"),
}
GROUPS: Final[dict[str, str]] = {
    "where": "Where the scripts are",
    "cluster": "Cluster and platform",
    "identity": "Image and identity",
    "defaults": "Per-script defaults (a directive overrides them)",
    "caps": "Caps (a directive may not exceed them)",
    "discovery": "Discovery",
    "state": "State",
    "policies": "Retries, waits and timeouts",
    "report": "Report, notifications, uploads",
    "pods": "Every pod",
}
# Read from the Airflow environment when the DAG file is parsed (they shape the DAG, so a Variable cannot
# hold them): name -> (default, meaning).
PARSE_TIME: Final[dict[str, tuple[str, str]]] = {
    "SCRIPT_RUNNER_SCHEDULE": (
        "@daily",
        "the DAG's schedule; none for manual runs only. Set it to the finest schedule= your scripts use",
    ),
    "SCRIPT_RUNNER_SHARDS": (
        "1 (or what SCRIPT_RUNNER_MAX_SCRIPTS needs)",
        "mapped run tasks (at most 64), each up to Airflow's max_map_length scripts (1 024 by default); set "
        "it, or SCRIPT_RUNNER_MAX_SCRIPTS, only for runs of more scripts than one run task maps",
    ),
    "SCRIPT_RUNNER_MAX_SCRIPTS": (
        "",
        "the most scripts a run may launch, read here too so that the DAG has enough run tasks for them "
        "(ceil(max_scripts / max_map_length)); a run past the run tasks' capacity fails in discover",
    ),
    "SCRIPT_RUNNER_MAX_RETRIES": (
        "",
        "the Airflow retries ceiling; each script's retries= is enforced under it",
    ),
    "SCRIPT_RUNNER_RETRY_DELAY": (
        "10s",
        "Airflow's retry delay of the run tasks, a floor; a script's own retry_delay is applied above it",
    ),
    "SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION": ("", "the Pub/Sub subscription of uploads: wires runs on upload"),
    "SCRIPT_RUNNER_UPLOAD_SETTLE": ("5s", "quiet time that ends a burst of uploads (at most 30s)"),
}
