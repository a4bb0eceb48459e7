"""Runner settings: one typed, validated object, and its small wire form for XCom.

Where the values come from (a preset, then the Airflow Variable, then the environment) is
:mod:`script_runner.config.settings_loader`; the presets themselves are :mod:`script_runner.config.presets`.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from script_runner.config import constants as c
from script_runner.config.env_names import check_extra_env
from script_runner.config.identity_bindings import IdentityBinding  # noqa: TC001 (pydantic needs it)
from script_runner.config.presets import PRESETS, Preset
from script_runner.config.units import parse_bytes, parse_cpu, parse_duration
from script_runner.exceptions import SettingsError

if TYPE_CHECKING:
    from collections.abc import Mapping

IdentityMode = Literal["ksa", "impersonate"]
# A Secret Manager secret version: projects/P/secrets/S[/versions/V] (V a number or "latest").
SECRET_RESOURCE = re.compile(
    r"^projects/([a-z0-9-]+)/secrets/([A-Za-z0-9_-]{1,255})(?:/versions/(latest|[0-9]+))?$"
)


class RunnerSettings(BaseModel):
    """Everything the runner needs to know about where it runs. Field docs: config/settings_docs.py."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Preset = "composer3"
    # Where scripts live: gs://bucket/prefix/. Default gs://$GCS_BUCKET/data/. load_settings maps Composer's
    # file:///home/airflow/gcs/... to gs://$GCS_BUCKET/... and refuses other file:// folders for a run.
    source: str = ""
    include: list[str] = Field(default_factory=lambda: ["*.sh"])
    exclude: list[str] = Field(default_factory=list)
    # Kubernetes
    namespace: str = c.COMPOSER3_NAMESPACE
    kubernetes_conn_id: str | None = "kubernetes_default"
    config_file: str | None = None
    in_cluster: bool | None = None
    cluster_context: str | None = None
    deferrable: bool = False
    # Seconds between pod-phase checks while a pod starts (KPO's default of 5 s idles every short script).
    startup_check_interval: int = Field(default=1, ge=1, le=60)
    gcp_conn_id: str = "google_cloud_default"
    image: str | None = None
    image_allowlist: list[str] = Field(default_factory=list)
    service_account: str | None = None
    # ksa mode: Kubernetes service accounts a script may name. impersonate mode: Google service accounts,
    # as a map short name -> email, or a list of emails (the short name is the part before '@').
    service_account_allowlist: list[str] | dict[str, str] = Field(default_factory=list)
    # What a script's service_account= names: "ksa", the pod's Kubernetes service account (Workload
    # Identity binds it to a Google one); "impersonate", a Google service account that the pod's own
    # identity impersonates (needs roles/iam.serviceAccountTokenCreator on it; the composer3 preset).
    identity_mode: IdentityMode = "ksa"
    # Which folders may name which of those accounts and secret prefixes (config/identity_bindings); none:
    # no script may name a service account. {"team-a/": {"service_accounts": ["etl-a"], "secrets": [...]}}
    identity_bindings: dict[str, IdentityBinding] = Field(default_factory=dict)
    # Short names for secret= directives: name -> projects/P/secrets/S[/versions/V].
    secrets: dict[str, str] = Field(default_factory=dict)
    # Per-script defaults (a directive overrides) and caps (a directive may not exceed).
    cpu: str = "500m"
    memory: str = "512Mi"
    ephemeral_storage: str = "1Gi"
    timeout: str = "1h"
    start_timeout: str = "5m"
    retries: int = Field(default=2, ge=0)
    retry_delay: str = "1m"
    max_retry_delay: str = "30m"
    max_cpu: str = "4"
    max_memory: str = "16Gi"
    max_ephemeral_storage: str = "10Gi"
    max_timeout: str = "24h"
    max_retries: int = Field(default=5, ge=0)
    # GKE Autopilot request rules (composer2): bend requests up to what Autopilot would apply anyway.
    autopilot: bool = False
    # Cloud Composer 3's rules for user workloads (composer3): resources bent up to supported values, values
    # above the supported maximums refused, no custom service accounts, pods in composer-user-workloads.
    composer3_rules: bool = False
    # Discovery
    max_header_bytes: int = Field(default=8192, ge=256, le=1 << 20)
    discovery_concurrency: int = Field(default=32, ge=1, le=256)
    max_scripts: int = Field(default=10_000, ge=1)
    # State, markers, reports
    state_bucket: str | None = None
    state_root: str = "script-runner"
    rerun: bool = False
    # Policies
    oom_memory_factor: float = Field(default=2.0, ge=1.0, le=8.0)
    max_evictions: int = Field(default=3, ge=0)
    # Wait before re-running an evicted or preempted pod. Longer than a worker takes to report the
    # rescheduled attempt's exit: a reschedule due before that report is drained is marked up_for_retry by
    # the scheduler (apache/airflow#71172), which spends an Airflow try (never one of the script's retries).
    eviction_delay: str = "15s"
    # A script with after= that waits for its dependencies frees its worker slot and looks again this much
    # later (a reschedule; at least 15s for the same reason as eviction_delay), and fails when the run is
    # older than max_dependency_wait while it still waits.
    dependency_poll: str = "30s"
    max_dependency_wait: str = "24h"
    # Airflow's execution_timeout of each script's task (per try): the whole task, pod start and log reading
    # included. Unset: the script's timeout + start_timeout + 5m, so the pod's own deadline comes first.
    execution_timeout: str | None = None
    # Failure notifications: dotted path of an Airflow BaseNotifier subclass and its arguments.
    notifier: str | None = None
    notifier_kwargs: dict[str, Any] = Field(default_factory=dict)
    # Runs on upload (docs/operator-guide.md, "Runs on upload"): an upload the DAG's watcher pulls (from
    # SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION) starts a run only while this is on; off, notifications are dropped.
    on_upload: bool = True
    # Fail the report task (and so the run) when a script failed or was rejected.
    fail_run_on_problems: bool = True
    # Local stack only: honour `fault=` directives (never in the cloud presets).
    local_faults: bool = False
    # Extra environment for every pod (e.g. the emulator endpoints locally). Secrets do not belong here.
    extra_env: dict[str, str] = Field(default_factory=dict)
    # ConfigMaps / Secrets in the pods' namespace whose keys become every pod's environment (Composer 3:
    # created with `gcloud composer environments user-workloads-config-maps|user-workloads-secrets`).
    env_from_config_maps: list[str] = Field(default_factory=list)
    env_from_secrets: list[str] = Field(default_factory=list)
    pod_labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        if value and not value.startswith(("gs://", "file://")):
            raise ValueError(f"source {value!r} must start with gs:// or file:// (e.g. gs://my-bucket/data/)")
        return value if not value or value.endswith("/") else value + "/"

    @field_validator("secrets")
    @classmethod
    def _check_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for name, resource in value.items():
            if not SECRET_RESOURCE.match(resource):
                raise ValueError(
                    f"secret {name!r}: {resource!r} is not projects/P/secrets/S[/versions/V] "
                    "(e.g. projects/my-project/secrets/warehouse-password/versions/latest)"
                )
        return value

    @field_validator("extra_env")
    @classmethod
    def _check_extra_env(cls, value: dict[str, str]) -> dict[str, str]:
        check_extra_env(list(value))
        return value

    @field_validator("cpu", "max_cpu")
    @classmethod
    def _check_cpu(cls, value: str) -> str:
        parse_cpu(value)
        return value

    @field_validator("memory", "max_memory", "ephemeral_storage", "max_ephemeral_storage")
    @classmethod
    def _check_bytes(cls, value: str) -> str:
        parse_bytes(value)
        return value

    @field_validator(
        "timeout",
        "start_timeout",
        "retry_delay",
        "max_retry_delay",
        "max_timeout",
        "eviction_delay",
        "dependency_poll",
        "max_dependency_wait",
    )
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("execution_timeout")
    @classmethod
    def _check_optional_duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) <= 0:
            raise ValueError(f"execution_timeout={value} must be longer than 0s (e.g. 2h), or unset")
        return value

    @model_validator(mode="after")
    def _check_caps(self) -> RunnerSettings:
        if self.retries > self.max_retries:
            raise ValueError(f"retries={self.retries} is above max_retries={self.max_retries}")
        if parse_cpu(self.cpu) > parse_cpu(self.max_cpu):
            raise ValueError(f"cpu={self.cpu} is above max_cpu={self.max_cpu}")
        if parse_bytes(self.memory) > parse_bytes(self.max_memory):
            raise ValueError(f"memory={self.memory} is above max_memory={self.max_memory}")
        if self.composer3_rules:
            self._check_composer3()
        if self.identity_mode == "impersonate":
            self.impersonation_targets()  # raises on an entry that is not a Google service account
        return self

    def _check_composer3(self) -> None:
        if self.namespace != c.COMPOSER3_NAMESPACE:
            raise ValueError(
                f"namespace={self.namespace!r}: Cloud Composer 3 runs every pod in {c.COMPOSER3_NAMESPACE} "
                "whatever namespace is asked (fix: remove the namespace setting)"
            )
        if self.service_account:
            raise ValueError(
                f"service_account={self.service_account!r}: Cloud Composer 3 has no custom Kubernetes "
                "service accounts; pods run as the environment's service account (fix: remove it and grant "
                "that service account what the scripts need)"
            )

    # Derived values -------------------------------------------------------------------------------
    def impersonation_targets(self) -> dict[str, str]:
        """Google service accounts a script may impersonate (identity_mode=impersonate): name -> email.

        Both the short name and the email are keys, so a directive may use either.

        :raises ValueError: for an allowlist entry that is not a service account email.
        """
        allow = self.service_account_allowlist
        pairs = allow.items() if isinstance(allow, dict) else ((e.split("@", 1)[0], e) for e in allow)
        out: dict[str, str] = {}
        for short, email in pairs:
            if "@" not in email or email.startswith("@") or " " in email:
                raise ValueError(
                    f"service_account_allowlist entry {email!r}: with identity_mode=impersonate every entry "
                    'names a Google service account by email (e.g. {"loader": '
                    '"loader@my-project.iam.gserviceaccount.com"})'
                )
            out[short] = email
            out[email] = email
        return out

    def fingerprint(self) -> str:
        """Hash of every setting (to tell whether two runs had the same settings)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    @property
    def source_scheme(self) -> str:
        """``gs`` or ``file``."""
        return self.source.split("://", 1)[0]

    @property
    def source_bucket(self) -> str:
        """Bucket of a gs:// source ('' for file://)."""
        return self.source[5:].split("/", 1)[0] if self.source_scheme == "gs" else ""

    @property
    def source_prefix(self) -> str:
        """Object prefix (gs) or folder path (file), always ending with '/'."""
        rest = self.source.split("://", 1)[1]
        return rest.split("/", 1)[1] if self.source_scheme == "gs" else rest

    @property
    def effective_state_bucket(self) -> str:
        """Bucket for state, markers and reports: the setting, else the source bucket, else $GCS_BUCKET."""
        return self.state_bucket or self.source_bucket or os.environ.get("GCS_BUCKET", "")

    @property
    def kube_hook_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that tell KubernetesPodOperator how to reach the cluster."""
        kwargs: dict[str, Any] = {"namespace": self.namespace}
        if self.kubernetes_conn_id:
            kwargs["kubernetes_conn_id"] = self.kubernetes_conn_id
        if self.config_file:
            kwargs["config_file"] = self.config_file
        if self.in_cluster is not None:
            kwargs["in_cluster"] = self.in_cluster
        if self.cluster_context:
            kwargs["cluster_context"] = self.cluster_context
        return kwargs


# Settings the run tasks never use and that may hold secrets (webhook URLs): never put in XCom.
_NOT_ON_THE_WIRE = frozenset({"notifier", "notifier_kwargs"})


def settings_to_wire(settings: RunnerSettings) -> dict[str, Any]:
    """The settings a run task needs, as small JSON for discovery's XCom: the fields that differ from
    their preset (the preset named in ``preset``); notifier fields are left out.

    :param settings: resolved settings.
    """
    base = RunnerSettings.model_construct(**PRESETS[settings.preset]).model_dump(mode="json", warnings=False)
    dumped = settings.model_dump(mode="json")
    wire = {k: v for k, v in dumped.items() if k not in _NOT_ON_THE_WIRE and base.get(k) != v}
    wire["preset"] = settings.preset
    return wire


def settings_from_wire(wire: Mapping[str, Any]) -> RunnerSettings:
    """Settings back from :func:`settings_to_wire` (validated again; notifier fields unset).

    :param wire: the wire form.
    :raises SettingsError: when the wire form is not valid settings.
    """
    preset = str(wire.get("preset") or "composer3")
    try:
        return RunnerSettings.model_validate({**PRESETS.get(preset, {}), **wire})
    except ValidationError as exc:
        raise SettingsError(
            f"settings handed over by discovery are not valid: {describe_validation_error(exc)}"
        ) from None


# Settings whose values may hold secrets (webhook URLs, tokens): an error names the field, never the value.
SECRET_BEARING = frozenset({"notifier_kwargs", "extra_env"})


def describe_validation_error(exc: ValidationError) -> str:
    """A settings validation error as one line naming each field, the problem and the fix.

    The value is shown only for a field that holds no secret: never for ``notifier_kwargs`` or
    ``extra_env``, nor for an error about the settings as a whole (its input is every setting).

    :param exc: pydantic's error.
    """
    parts = []
    for err in exc.errors(include_input=True, include_url=False):
        loc = [str(p) for p in err["loc"]]
        field = ".".join(loc) or "settings"
        if loc and loc[0] not in SECRET_BEARING and not isinstance(err.get("input"), dict):
            parts.append(f"setting {field}={err.get('input')!r}: {err['msg']}")
        else:
            parts.append(f"setting {field}: {err['msg']}")
    return "; ".join(parts) + " (fix: correct the Variable script_runner_settings or SCRIPT_RUNNER_* env)"
