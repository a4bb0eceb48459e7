"""The Composer environments the local Composer API double serves, read from a JSON file.

One file describes the project, the region, the access token every call must carry (what
``CLOUDSDK_AUTH_ACCESS_TOKEN_FILE`` holds for gcloud) and the environments::

    {"project": "test-project", "location": "us-central1", "token": "local-user-token",
     "environments": [
        {"name": "af3", "image": "composer-3-airflow-3.3.1-build.2", "bucket": "composer-bucket",
         "providers": {"cncf-kubernetes": "10.14.0", "google": "22.2.2"},
         "airflow_url": "http://127.0.0.1:8280", "airflow_cli": ["/path/venv/bin/airflow"]}]}

``airflow_url``/``airflow_cli`` are optional: with them the environment's Airflow is the local stack's
(its REST API behind the double's Google-token front, its CLI for ``executeAirflowCommand``); without them
the double keeps an in-memory Airflow holding Variables only (enough to deploy, not to run the DAG).

Image versions use the spelling gcloud parses (``composer-3-airflow-X.Y.Z-build.N`` and
``composer-2.X.Y-airflow-X.Y.Z``): gcloud reads the Airflow version from it to decide which ``environments
run`` subcommands it allows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

_IMAGE = re.compile(r"^composer-(\d+(?:\.\d+\.\d+)?)-airflow-(\d+\.\d+\.\d+)")


@dataclass
class ComposerEnv:
    """One environment: its image, bucket and Airflow (the local stack's, or in memory)."""

    name: str
    image: str
    bucket: str
    providers: dict[str, str] = field(default_factory=dict)
    airflow_url: str | None = None
    airflow_cli: list[str] | None = None
    state: str = "RUNNING"
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def airflow_version(self) -> str:
        """The Airflow release in the image version (as gcloud reads it)."""
        match = _IMAGE.match(self.image)
        if not match:
            raise ValueError(f"image version {self.image!r} is not composer-N[-X.Y.Z]-airflow-X.Y.Z")
        return match.group(2)

    @property
    def composer_major(self) -> int:
        """3 or 2."""
        match = _IMAGE.match(self.image)
        assert match is not None
        return int(match.group(1).split(".")[0])

    def describe(self, project: str, location: str, front: str) -> dict[str, Any]:
        """The Environment resource as ``environments.get`` returns it (the fields gcloud and deploy read).

        :param front: the double's base URL; ``airflowUri`` points at its Airflow front for this environment.
        """
        name = f"projects/{project}/locations/{location}/environments/{self.name}"
        config: dict[str, Any] = {
            "dagGcsPrefix": f"gs://{self.bucket}/dags",
            "airflowUri": f"{front}/airflow/{self.name}",
            "softwareConfig": {
                "imageVersion": self.image,
                "pythonVersion": "3",
                "pypiPackages": {},
            },
            "environmentSize": "ENVIRONMENT_SIZE_SMALL",
        }
        if self.composer_major == 2:
            config["gkeCluster"] = f"projects/{project}/locations/{location}/clusters/{self.name}-gke"
            config["nodeConfig"] = {"serviceAccount": f"{self.name}@{project}.iam.gserviceaccount.com"}
        else:
            config["nodeConfig"] = {"serviceAccount": f"{self.name}@{project}.iam.gserviceaccount.com"}
        return {
            "name": name,
            "uuid": f"00000000-0000-4000-8000-{abs(hash(self.name)) % 10**12:012d}",
            "state": self.state,
            "config": config,
            "createTime": "2026-12-01T00:00:00Z",
            "updateTime": "2026-12-01T00:00:00Z",
        }


@dataclass
class Catalogue:
    """The project, region, expected token and environments the double serves."""

    project: str
    location: str
    token: str
    environments: dict[str, ComposerEnv]

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        """Read the JSON file described in the module docstring.

        :param path: the file.
        """
        data = json.loads(path.read_text())
        envs = {}
        for entry in data["environments"]:
            env = ComposerEnv(
                name=str(entry["name"]),
                image=str(entry["image"]),
                bucket=str(entry["bucket"]),
                providers={str(k): str(v) for k, v in dict(entry.get("providers") or {}).items()},
                airflow_url=entry.get("airflow_url"),
                airflow_cli=[str(a) for a in entry["airflow_cli"]] if entry.get("airflow_cli") else None,
                state=str(entry.get("state", "RUNNING")),
            )
            env.airflow_version  # noqa: B018 - a bad image version fails here, at load
            envs[env.name] = env
        return cls(
            project=str(data["project"]),
            location=str(data["location"]),
            token=str(data["token"]),
            environments=envs,
        )
