"""What differs between the places the runner runs: the presets (composer3, composer2, gke, local).

A preset is a set of setting defaults; everything else is a field default of
:class:`~script_runner.config.settings.RunnerSettings`. Which preset applies is decided by
:func:`script_runner.config.settings_loader.load_settings`.
"""

from __future__ import annotations

from typing import Any, Literal

from script_runner.config import constants as c

Preset = Literal["composer3", "composer2", "gke", "local"]

# What differs between the places we run. Everything else is a field default of RunnerSettings.
PRESETS: dict[str, dict[str, Any]] = {
    # Composer 3: pods go to the user-workloads namespace through Composer's kube config. No custom
    # service accounts there (pods run as the environment's identity), no affinity, no extra sidecars,
    # resources only at supported values (composer3_rules).
    "composer3": {
        "namespace": c.COMPOSER3_NAMESPACE,
        "config_file": c.COMPOSER3_KUBE_CONFIG,
        "kubernetes_conn_id": "kubernetes_default",
        "service_account": None,
        "composer3_rules": True,
        # A script's service_account= names a Google service account the environment's identity
        # impersonates (IAM Credentials API): Composer 3's only way to a per-script identity.
        "identity_mode": "impersonate",
    },
    # Composer 2: the environment's GKE Autopilot cluster; Autopilot bends requests (min/max, ratio).
    "composer2": {
        "namespace": "script-runner",
        "config_file": None,
        "in_cluster": True,
        "service_account": "script-runner",
        "autopilot": True,
    },
    # Any GKE cluster with Workload Identity, reached with a kube config or in-cluster.
    "gke": {"namespace": "script-runner", "service_account": "script-runner"},
    # The local stack (local/): the Kubernetes double, the GCS emulator, faults honoured.
    "local": {
        "namespace": c.COMPOSER3_NAMESPACE,
        "kubernetes_conn_id": "kubernetes_default",
        "image": "localhost/script-runner:local",
        "service_account": None,
        "service_account_allowlist": ["reader", "writer", "script-runner"],
        # One trusted team locally: every folder may use every local account and secret (a test that
        # shows folders kept apart sets its own bindings in the Variable).
        "identity_bindings": {
            "*": {"service_accounts": ["reader", "writer", "script-runner"], "secrets": ["projects/"]}
        },
        "local_faults": True,
        "start_timeout": "2m",
        "retry_delay": "2s",
        "max_retry_delay": "10s",
        "dependency_poll": "15s",
        # The stack always wires the upload watcher; a test turns runs on upload on in the Variable, so
        # the demo's and other tests' uploads under data/ never start runs of their own.
        "on_upload": False,
    },
}
