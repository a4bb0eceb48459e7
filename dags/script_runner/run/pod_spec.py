"""Pod spec for one script: name, labels, resources, security, environment — deterministic and valid."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from kubernetes.client import models as k8s

from script_runner.config import constants as c
from script_runner.config.platform_rules import autopilot_bend
from script_runner.config.units import format_bytes, format_cpu, parse_bytes, parse_cpu

if TYPE_CHECKING:
    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.spec import ScriptSpec

_Model = TypeVar("_Model")


@cache
def _shared_configuration() -> Any:
    """One client Configuration for every model object this module builds (see :func:`new_model`)."""
    from kubernetes.client import Configuration

    return Configuration.get_default_copy()


def new_model(cls: type[_Model], **fields: Any) -> _Model:
    """A Kubernetes model object that shares one client Configuration with the others built here.

    Each model made without one gets a Configuration of its own, and KPO deep-copies the pod several
    times while building it: every copied Configuration sets its loggers' levels again, which clears
    the cache of every logger in the process (hundreds in a task). Sharing one (copied once per deep
    copy) cut building a script's pod from ~60 to ~15 ms of CPU here (54 copied Configurations to 8).

    :param cls: the model class, e.g. ``k8s.V1EnvVar``.
    :param fields: the model's fields.
    """
    return cls(local_vars_configuration=_shared_configuration(), **fields)  # type: ignore[call-arg]


def env_list(env: dict[str, str]) -> list[k8s.V1EnvVar]:
    """Environment variables as model objects (see :func:`new_model`), in order.

    :param env: name to value.
    """
    return [new_model(k8s.V1EnvVar, name=k, value=v) for k, v in env.items()]


_NON_DNS = re.compile(r"[^a-z0-9-]+")
_NON_LABEL = re.compile(r"[^A-Za-z0-9._-]+")
RUNNER_UID = 10001


def path_hash(path: str) -> str:
    """Short stable hash of a script path (a label value and the uniqueness part of pod names)."""
    return hashlib.sha256(path.encode()).hexdigest()[:10]


def pod_name(script_path: str, run_id: str, try_number: int) -> str:
    """DNS-1123 pod name: ``sr-<slug>-<path hash>-<attempt hash>``, at most 63 characters.

    Same script + run + try gives the same name (KPO can re-attach after a worker restart); two paths
    that slug alike differ by the path hash; each try gets a new name so an old pod never blocks a retry.
    """
    slug = _NON_DNS.sub("-", script_path.lower().removesuffix(".sh")).strip("-") or "script"
    attempt = hashlib.sha256(f"{run_id}\0{try_number}".encode()).hexdigest()[:6]
    tail = f"-{path_hash(script_path)}-{attempt}"
    head = ("sr-" + slug)[: c.POD_NAME_MAX - len(tail)].rstrip("-")
    return head + tail


def label_value(text: str) -> str:
    """A valid label value: allowed characters only, at most 63, starting and ending alphanumeric."""
    value = _NON_LABEL.sub("_", text)[: c.LABEL_VALUE_MAX]
    return value.strip("._-")


def pod_labels(spec: ScriptSpec, settings: RunnerSettings) -> dict[str, str]:
    """Recommended app.kubernetes.io labels plus the script's own."""
    return {
        **settings.pod_labels,
        c.LABEL_NAME: c.APP_NAME,
        c.LABEL_COMPONENT: "script",
        c.LABEL_PART_OF: "airflow",
        c.LABEL_MANAGED_BY: "airflow",
        c.LABEL_SCRIPT: label_value(spec.path.removesuffix(".sh")) or "script",
        c.LABEL_SCRIPT_HASH: path_hash(spec.path),
    }


def pod_annotations(spec: ScriptSpec, settings: RunnerSettings) -> dict[str, str]:
    """Full path and generation (labels cannot hold them), and the local fault when allowed."""
    out = {c.ANNOTATION_SCRIPT_PATH: spec.path, c.ANNOTATION_GENERATION: spec.generation}
    if spec.fault and settings.local_faults:
        out[c.ANNOTATION_LOCAL_FAULT] = spec.fault
    return out


def memory_for_attempt(spec: ScriptSpec, settings: RunnerSettings, ooms: int) -> str:
    """Memory for an attempt after ``ooms`` OOMKilled attempts: grown by the factor, capped."""
    if not spec.oom_retry or ooms <= 0:
        return spec.memory
    grown = parse_bytes(spec.memory) * (Decimal(str(settings.oom_memory_factor)) ** ooms)
    return format_bytes(min(grown, parse_bytes(settings.max_memory)))


def resources(
    spec: ScriptSpec, memory: str, *, settings: RunnerSettings | None = None
) -> k8s.V1ResourceRequirements:
    """Requests equal limits (Guaranteed QoS; what Autopilot applies anyway).

    :param memory: this attempt's memory (grown after OOMKilled attempts).
    :param settings: when the platform has resource rules (composer3, composer2), a grown memory brings
        the cpu up to keep 6.5 GiB per vCPU at most: Composer 3 refuses the pod otherwise.
    """
    cpu = spec.cpu
    if settings is not None and memory != spec.memory and (settings.composer3_rules or settings.autopilot):
        cpu = format_cpu(autopilot_bend(parse_cpu(spec.cpu), parse_bytes(memory))[0])
    values = {"cpu": cpu, "memory": memory, "ephemeral-storage": spec.ephemeral_storage}
    return new_model(k8s.V1ResourceRequirements, requests=dict(values), limits=dict(values))


def pod_security_context() -> k8s.V1PodSecurityContext:
    """Pod-level part of the restricted Pod Security Standard."""
    return new_model(
        k8s.V1PodSecurityContext,
        run_as_non_root=True,
        run_as_user=RUNNER_UID,
        run_as_group=RUNNER_UID,
        fs_group=RUNNER_UID,
        seccomp_profile=new_model(k8s.V1SeccompProfile, type="RuntimeDefault"),
    )


def container_security_context() -> k8s.V1SecurityContext:
    """Container-level part: no privilege escalation, read-only root, no capabilities."""
    return new_model(
        k8s.V1SecurityContext,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=new_model(k8s.V1Capabilities, drop=["ALL"]),
        seccomp_profile=new_model(k8s.V1SeccompProfile, type="RuntimeDefault"),
    )


def volumes(spec: ScriptSpec) -> tuple[list[k8s.V1Volume], list[k8s.V1VolumeMount]]:
    """Writable emptyDirs for the work dir and /tmp (the root filesystem is read-only)."""
    size = spec.ephemeral_storage
    vols = [
        new_model(
            k8s.V1Volume, name="work", empty_dir=new_model(k8s.V1EmptyDirVolumeSource, size_limit=size)
        ),
        new_model(k8s.V1Volume, name="tmp", empty_dir=new_model(k8s.V1EmptyDirVolumeSource, size_limit=size)),
    ]
    mounts = [
        new_model(k8s.V1VolumeMount, name="work", mount_path=c.WORKDIR),
        new_model(k8s.V1VolumeMount, name="tmp", mount_path="/tmp"),
    ]
    return vols, mounts


def script_env(spec: ScriptSpec, settings: RunnerSettings) -> dict[str, str]:
    """Environment fixed at plan time (docs/DESIGN.md); the run-specific part is added at launch."""
    env = {
        **settings.extra_env,
        **spec.env,
        "RUNNER_SCRIPT_URI": spec.uri,
        "RUNNER_SCRIPT_PATH": spec.path,
        "RUNNER_SCRIPT_GENERATION": spec.generation,
        "RUNNER_SCRIPT_MD5": spec.md5,
        "RUNNER_STATE_BUCKET": settings.effective_state_bucket,
        "RUNNER_STATE_ROOT": settings.state_root,
        "RUNNER_WORKDIR": c.WORKDIR,
        "RUNNER_NEEDS": " ".join(spec.needs),
    }
    if spec.impersonate:
        env["RUNNER_IMPERSONATE"] = spec.impersonate
        env["RUNNER_IDENTITY"] = spec.impersonate
    elif spec.service_account:
        env["RUNNER_IDENTITY"] = spec.service_account
    if spec.secrets:
        env["RUNNER_SECRETS"] = " ".join(spec.secrets)
    return env


def run_env(
    *, dag_id: str, run_id: str, try_number: int, logical_date: str, interval: str, rerun: bool
) -> dict[str, str]:
    """Environment that depends on the Airflow run and attempt.

    ``RUNNER_INTERVAL`` (the run's interval key, :func:`~script_runner.run.done_markers.interval_key`)
    keys the ``step`` checkpoints; ``RUNNER_LOGICAL_DATE`` is the logical date, for scripts that want one.
    """
    return {
        "RUNNER_DAG_ID": dag_id,
        "RUNNER_RUN_ID": run_id,
        "RUNNER_TRY_NUMBER": str(try_number),
        "RUNNER_LOGICAL_DATE": logical_date,
        "RUNNER_INTERVAL": interval,
        "RUNNER_RERUN": "true" if rerun else "false",
    }


def operator_kwargs(spec: ScriptSpec, settings: RunnerSettings) -> dict[str, Any]:
    """KubernetesPodOperator keyword arguments for a script (names valid from provider 10.5 on)."""
    from script_runner.config.compat import reattach_kwargs  # imports Airflow: only where a task is built

    vols, mounts = volumes(spec)
    kwargs: dict[str, Any] = {
        **settings.kube_hook_kwargs,
        "image": spec.image,
        "cmds": [c.ENTRYPOINT],
        "arguments": [],
        "labels": pod_labels(spec, settings),
        "annotations": pod_annotations(spec, settings),
        "container_resources": resources(spec, spec.memory),
        "security_context": pod_security_context(),
        "container_security_context": container_security_context(),
        "volumes": vols,
        "volume_mounts": mounts,
        "automount_service_account_token": False,
        "active_deadline_seconds": spec.timeout,
        "startup_timeout_seconds": spec.start_timeout,
        "startup_check_interval_seconds": settings.startup_check_interval,
        "termination_grace_period": 30,
        "on_finish_action": "delete_pod",
        "get_logs": True,
        "log_events_on_failure": True,
        "do_xcom_push": False,
        "random_name_suffix": False,
        **reattach_kwargs(),
        "skip_on_exit_code": sorted({c.EXIT_SKIPPED, *spec.skip_on}),
        "deferrable": settings.deferrable,
    }
    if spec.service_account:
        kwargs["service_account_name"] = spec.service_account
    env_from = env_from_sources(settings)
    if env_from:
        kwargs["env_from"] = env_from
    return kwargs


def env_from_sources(settings: RunnerSettings) -> list[k8s.V1EnvFromSource]:
    """Every pod's ``envFrom``: the configured ConfigMaps, then Secrets (later keys win, as in Kubernetes)."""
    return [
        *(
            new_model(k8s.V1EnvFromSource, config_map_ref=new_model(k8s.V1ConfigMapEnvSource, name=n))
            for n in settings.env_from_config_maps
        ),
        *(
            new_model(k8s.V1EnvFromSource, secret_ref=new_model(k8s.V1SecretEnvSource, name=n))
            for n in settings.env_from_secrets
        ),
    ]
