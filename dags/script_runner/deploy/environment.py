"""What a Composer environment's ``describe`` decides: its bucket, preset, and where its Variable is kept.

``gcloud composer environments run ... variables`` exists only for Airflow < 3.0.0 (gcloud's allowlist:
``variables [**, 3.0.0)``; gcloud refuses it on Airflow 3 before calling Composer). On Airflow 3 the
Variable goes through the environment's Airflow REST API at ``config.airflowUri`` (``/api/v2``), which
Composer serves behind a Google front accepting the user's Google access token: the one
``gcloud auth print-access-token`` prints, so one ``gcloud auth login`` is enough.
"""

from __future__ import annotations

import re
from typing import Any

from packaging.version import Version

from script_runner.deploy.targets import AirflowRest, Gcloud, VariableStore
from script_runner.exceptions import DeployError

# gcloud's allowlist bound for `environments run ... variables` (gcloud 528: `variables [**, 3.0.0)`).
GCLOUD_VARIABLES_BEFORE = Version("3.0.0")
_AIRFLOW = re.compile(r"-airflow-(\d+\.\d+\.\d+)")


def image_version(describe: dict[str, Any]) -> str:
    """``config.softwareConfig.imageVersion``, e.g. ``composer-3-airflow-3.1.8-build.3``."""
    return str(describe.get("config", {}).get("softwareConfig", {}).get("imageVersion", ""))


def airflow_version(describe: dict[str, Any]) -> Version:
    """The Airflow release in the image version (as gcloud reads it).

    :raises DeployError: the image version names none.
    """
    match = _AIRFLOW.search(image_version(describe))
    if not match:
        image = image_version(describe)
        raise DeployError(f"cannot read the Airflow version from the image version {image!r}")
    return Version(match.group(1))


def bucket_of(describe: dict[str, Any]) -> str:
    """The environment's bucket, from ``config.dagGcsPrefix`` (``gs://BUCKET/dags``)."""
    prefix = str(describe.get("config", {}).get("dagGcsPrefix", ""))
    if not prefix.startswith("gs://"):
        raise DeployError(f"the environment has no dagGcsPrefix (got {prefix!r})")
    name = prefix.removeprefix("gs://").removesuffix("/").removesuffix("/dags").strip("/")
    if not name or "/" in name:
        raise DeployError(f"the environment's dagGcsPrefix {prefix!r} names no bucket")
    return name


def composer_preset(describe: dict[str, Any] | None) -> str | None:
    """``composer3`` or ``composer2`` from the image version (None when it is neither)."""
    if describe is None:
        return None
    image = image_version(describe)
    if image.startswith("composer-3"):
        return "composer3"
    if image.startswith("composer-2"):
        return "composer2"
    return None


def variable_store(describe: dict[str, Any], gcloud: Gcloud) -> VariableStore:
    """gcloud ``environments run ... variables`` below Airflow 3; the REST API at ``airflowUri`` from 3.0.

    :param describe: the environment.
    :param gcloud: the environment's gcloud (also the source of the access token).
    :raises DeployError: an Airflow 3 environment without ``airflowUri``, or no token (not logged in).
    """
    airflow = airflow_version(describe)
    state = str(describe.get("state", ""))
    if state and state != "RUNNING":
        raise DeployError(
            f"the environment {gcloud.environment} is {state}, not RUNNING: wait until it is, then deploy"
        )
    if airflow < GCLOUD_VARIABLES_BEFORE:
        return gcloud
    uri = str(describe.get("config", {}).get("airflowUri", ""))
    if not uri.startswith(("https://", "http://")):
        raise DeployError(
            f"the environment {gcloud.environment} runs Airflow {airflow}, where gcloud refuses "
            "`environments run ... variables`, and its describe has no config.airflowUri for the REST API"
        )
    return AirflowRest(
        uri,
        token=gcloud.access_token(),
        api="/api/v2",
        token_source="token from gcloud auth print-access-token",
    )
