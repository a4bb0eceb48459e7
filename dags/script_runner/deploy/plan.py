"""``script-runner deploy``: check the environment's versions, copy the DAG and package, merge the settings.

:func:`make_plan` reads (versions, the bucket's ``dags/`` folder) and decides; :func:`apply` writes (uploads,
deletions of package files that no longer exist, the ``script_runner_settings`` Variable). ``--dry-run``
stops after the plan. What cannot be done from here (the image, identities) is listed in ``plan.left``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from script_runner.config.presets import PRESETS
from script_runner.config.settings_loader import load_settings
from script_runner.deploy.environment import bucket_of, composer_preset, variable_store
from script_runner.deploy.files import FileAction, file_actions
from script_runner.deploy.storage import storage_client
from script_runner.deploy.targets import AirflowRest, Gcloud, VariableStore
from script_runner.deploy.versions import (
    PROVIDERS,
    Versions,
    default_table_path,
    load_support_table,
    parse_versions_option,
)
from script_runner.deploy.versions import versions_from_describe as _from_describe
from script_runner.exceptions import DeployError

if TYPE_CHECKING:
    from google.cloud import storage

    from script_runner.config.settings import RunnerSettings

VARIABLE = "script_runner_settings"


@dataclass(frozen=True)
class DeployRequest:
    """What the user asked for (the CLI's options).

    :param bucket: ``gs://BUCKET`` (or the bare name); None with ``environment``.
    :param environment: a Composer environment, resolved with ``gcloud composer environments describe``.
    :param location: the environment's region.
    :param airflow_url: an Airflow REST API to read versions from and keep the Variable in.
    :param versions: ``airflow=X,cncf-kubernetes=Y,google=Z``, or ``local`` for the Airflow installed here.
    :param support_table: a support table file (``compat/support.json``); None: the built-in one.
    :param settings: keys to set or merge into the Variable.
    :param dags_dir: the folder holding the DAG file, the package and ``.airflowignore``.
    :param gcloud: the gcloud executable.
    :param airflow_token: bearer token for ``airflow_url``.
    :param airflow_auth: ``user:password`` for ``airflow_url`` (Airflow 2's basic auth).
    :param project: the environment's project (gcloud's ``--project``; None: gcloud's default project).
    :param allow_unproven: deploy to a version whose compat result is older than the DAG code (warned).
    """

    bucket: str | None = None
    environment: str | None = None
    location: str | None = None
    airflow_url: str | None = None
    versions: str | None = None
    support_table: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    dags_dir: Path = Path(__file__).resolve().parents[2]
    gcloud: str = "gcloud"
    airflow_token: str | None = None
    airflow_auth: str | None = None
    project: str | None = None
    allow_unproven: bool = False


@dataclass
class DeployPlan:
    """Everything deploy will do, and what it leaves to the user."""

    bucket: str
    versions: Versions
    support_origin: str
    files: list[FileAction]
    variable: dict[str, Any]
    store: VariableStore | None
    left: list[str]
    default_preset: str | None = None
    current: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    client: storage.Client | None = None

    def render(self, *, dry_run: bool) -> list[str]:
        """Printable lines: versions, file actions, the Variable, what is left."""
        verb = "would" if dry_run else "did"
        out = [f"bucket: gs://{self.bucket}", f"versions: {self.versions.describe()}: supported"]
        out.append(f"  (checked against the {self.support_origin})")
        out += [f"WARNING: {w}" for w in self.warnings]
        counts = {a: sum(f.action == a for f in self.files) for a in ("upload", "unchanged", "delete")}
        out.append(
            f"dags/: {verb} upload {counts['upload']}, delete {counts['delete']}, "
            f"{counts['unchanged']} unchanged"
        )
        out += [f"  {f.action:9} gs://{self.bucket}/{f.name}" for f in self.files if f.action != "unchanged"]
        shown = {**({"preset": self.default_preset} if self.default_preset else {}), **self.variable}
        value = json.dumps(shown, sort_keys=True)
        merged = json.dumps(self.merged(), sort_keys=True)
        if self.store is None:
            out.append(f"Variable {VARIABLE}: not set from here (no environment or --airflow-url)")
        elif dry_run:
            out.append(f"Variable {VARIABLE}: would merge {value} into its current value, giving:")
            out.append(f"  {merged}")
            out.append("  with:")
            out += [f"  {line}" for line in self.store.commands(VARIABLE, merged)]
        else:
            out.append(f"Variable {VARIABLE}: merged {value} into its current value, giving {merged}")
        out.append("left for you to do:" if self.left else "nothing left to do by hand")
        out += [f"  - {item}" for item in self.left]
        return out

    def merged(self) -> dict[str, Any]:
        """The Variable's new value: its current value, the requested keys over it, the preset default."""
        merged = {**self.current, **self.variable}
        if self.default_preset and "preset" not in merged:
            merged["preset"] = self.default_preset  # the environment's Composer major, unless already chosen
        return merged


def make_plan(request: DeployRequest) -> DeployPlan:
    """Resolve the target, check versions (raising with the reason outside the table), list file actions.

    :param request: the user's options.
    :raises DeployError: unsupported versions, unreachable target, missing files.
    """
    gcloud = describe = None
    bucket = _bare_bucket(request.bucket) if request.bucket else None
    if request.environment:
        if not request.location:
            raise DeployError("--environment needs --location (the environment's region)")
        gcloud = Gcloud(
            environment=request.environment,
            location=request.location,
            binary=request.gcloud,
            project=request.project,
        )
        describe = gcloud.describe()
        bucket = bucket_of(describe)
    if not bucket:
        raise DeployError("give --bucket gs://BUCKET or --environment NAME --location REGION")
    rest = (
        AirflowRest(request.airflow_url, token=request.airflow_token, basic_auth=request.airflow_auth)
        if request.airflow_url
        else None
    )
    versions = _versions(request, describe, rest)
    table_path = request.support_table or default_table_path(request.dags_dir)
    table = load_support_table(table_path, root=request.dags_dir.parent)
    problems = table.check(versions)
    if problems:
        raise DeployError(f"refusing to deploy to {versions.describe()}: " + "; ".join(problems))
    warnings = table.unproven(versions, allow=request.allow_unproven)
    # Everything that can refuse (the Variable's path and access, the bucket's credentials) before any write.
    store: VariableStore | None = rest
    if store is None and gcloud is not None and describe is not None:
        store = variable_store(describe, gcloud)
    current = _current_dict(store.get_variable(VARIABLE)) if store is not None else {}
    client = storage_client(
        gcloud=request.gcloud, project=request.project, token=gcloud.access_token if gcloud else None
    )
    return DeployPlan(
        bucket=bucket,
        versions=versions,
        support_origin=table.origin,
        files=file_actions(request.dags_dir, bucket, client),
        variable=dict(request.settings),
        store=store,
        left=[],
        default_preset=composer_preset(describe),
        current=current,
        warnings=warnings,
        client=client,
    )


def apply(plan: DeployPlan) -> RunnerSettings:
    """Upload and delete the planned files, then merge and set the Variable; fills ``plan.left``.

    The merged Variable is validated as the DAG will read it before anything is written.

    :param plan: from :func:`make_plan`.
    :returns: the settings the DAG will read.
    """
    merged = plan.merged()
    settings = _validate(merged, plan.bucket)
    client = plan.client or storage_client()
    bucket = client.bucket(plan.bucket)
    for f in plan.files:
        if f.action == "upload" and f.content is not None:
            bucket.blob(f.name).upload_from_string(f.content, content_type="text/plain")
        elif f.action == "upload" and f.local is not None:
            bucket.blob(f.name).upload_from_filename(str(f.local))
        elif f.action == "delete":
            bucket.blob(f.name).delete()
    if plan.store is not None:
        plan.store.set_variable(VARIABLE, json.dumps(merged, sort_keys=True))
    plan.left = left_to_do(settings, variable_set=plan.store is not None, merged=merged)
    return settings


def check_settings(plan: DeployPlan) -> RunnerSettings:
    """The settings the DAG would read with only the planned keys (for ``--dry-run``); fills ``plan.left``.

    :param plan: from :func:`make_plan`.
    """
    variable = plan.merged()
    settings = _validate(variable, plan.bucket)
    plan.left = left_to_do(settings, variable_set=plan.store is not None, merged=variable)
    return settings


def left_to_do(settings: RunnerSettings, *, variable_set: bool, merged: dict[str, Any]) -> list[str]:
    """What deploy cannot do: the image, the identities and manifests, the scripts themselves.

    :param settings: the settings the DAG will read.
    :param variable_set: whether deploy keeps the Variable (else the user sets it).
    :param merged: the Variable's value.
    """
    left = []
    if not variable_set:
        left.append(
            f"set the Airflow Variable {VARIABLE} to {shlex.quote(json.dumps(merged, sort_keys=True))}"
        )
    if not settings.image:
        left.append(
            "build and push the runner image (gcloud builds submit --project PROJECT "
            "--config cloudbuild.yaml "
            "--substitutions=_REGISTRY=REGION-docker.pkg.dev/PROJECT/REPO,_TAG=$(git rev-parse --short HEAD) "
            ".), then deploy again with --image REGION-docker.pkg.dev/PROJECT/REPO/script-runner:TAG"
        )
    elif settings.preset != "local":
        left.append(f"make sure the image {settings.image} is pushed (cloudbuild.yaml builds it)")
    identity = (
        f"bash k8s/setup-identity.sh --overlay {settings.preset} --project PROJECT "
        f"--bucket {settings.source_bucket} --source-prefix {settings.source_prefix} "
        f"--state-root {settings.state_root}"
    )
    if settings.effective_state_bucket != settings.source_bucket:
        identity += f" --state-bucket {settings.effective_state_bucket}"
    if settings.preset != "composer3" and settings.namespace != "script-runner":
        identity += f" --namespace {settings.namespace}"
    if settings.preset == "composer3":
        left.append(
            "for per-script identities, enable the IAM Credentials API (impersonation): gcloud services "
            "enable iamcredentials.googleapis.com --project PROJECT"
        )
        left.append(
            "identities: pods run as the environment's service account; for per-script identities "
            f"(impersonation) run {identity} --environment-sa ENV_SA --identity NAME ... (--dry-run first)"
        )
    elif settings.preset in ("composer2", "gke"):
        left.append(
            "point kubectl at the cluster: gcloud container clusters get-credentials CLUSTER --location "
            "REGION --project PROJECT (Composer 2: the environment's config.gkeCluster)"
        )
        workers = " --workers-namespace COMPOSER_WORKERS_NAMESPACE" if settings.preset == "composer2" else ""
        left.append(
            f"manifests and identities (Workload Identity, bucket grants): {identity} --airflow-sa AIRFLOW_SA"
            f"{workers} (--dry-run first); it applies k8s/generated/{settings.preset}-PROJECT, the overlay "
            f"with your project's values: re-apply that one, not k8s/overlays/{settings.preset} (its "
            "placeholders would undo the identities)"
        )
    left.append(f"drop scripts into {settings.source}")
    return left


def _validate(variable: dict[str, Any], bucket: str) -> RunnerSettings:
    preset = str(variable.get("preset", "composer3"))
    if preset not in PRESETS:
        raise DeployError(f"preset {preset!r} is unknown; use one of {', '.join(PRESETS)}")
    return load_settings(variable=variable, environ={"GCS_BUCKET": bucket})


def _current_dict(current: str | None) -> dict[str, Any]:
    if not current:
        return {}
    try:
        value = json.loads(current)
    except ValueError as exc:
        raise DeployError(
            f"the Variable {VARIABLE} holds no JSON ({current[:80]!r}): fix or delete it"
        ) from exc
    if not isinstance(value, dict):
        raise DeployError(f"the Variable {VARIABLE} is not a JSON object: fix or delete it")
    return value


def _versions(request: DeployRequest, describe: dict[str, Any] | None, rest: AirflowRest | None) -> Versions:
    if request.versions == "local":
        return _installed_versions()
    if request.versions:
        return parse_versions_option(request.versions)
    if rest is not None:
        return rest.versions()
    if describe is not None:
        return _from_describe(describe)
    raise DeployError(
        "with --bucket alone the environment's versions are unknown: pass --versions "
        "airflow=X.Y.Z,cncf-kubernetes=X.Y.Z,google=X.Y.Z (what your Airflow runs), --versions local "
        "(the Airflow installed here), or --airflow-url URL (asks its REST API)"
    )


def _installed_versions() -> Versions:
    try:
        airflow = metadata.version("apache-airflow")
    except metadata.PackageNotFoundError as exc:
        raise DeployError("--versions local: no apache-airflow installed here") from exc
    providers: dict[str, str | None] = {}
    for name in PROVIDERS:
        try:
            providers[name] = metadata.version(f"apache-airflow-providers-{name}")
        except metadata.PackageNotFoundError as exc:
            raise DeployError(f"--versions local: apache-airflow-providers-{name} is not installed") from exc
    return Versions(airflow=airflow, providers=providers, source="installed here")


def _bare_bucket(text: str) -> str:
    name = text.removeprefix("gs://").strip("/")
    if not name or "/" in name:
        raise DeployError(f"--bucket {text!r}: give the bucket only, e.g. gs://my-composer-bucket")
    return name
