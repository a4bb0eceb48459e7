"""cloudbuild.yaml, checked offline: its substitutions resolve to an Artifact Registry image built from the root
Dockerfile, its first step refuses missing values (run here with bash) before anything Cloud Build validates at
submission could refuse them with a less useful message, every step runs a Cloud Builders image, and
.gcloudignore uploads what the build reads."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pathspec
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILT_IN = {"PROJECT_ID", "BUILD_ID", "PROJECT_NUMBER", "LOCATION", "COMMIT_SHA", "SHORT_SHA", "REVISION_ID"}
AR_IMAGE = re.compile(r"^[a-z0-9-]+-docker\.pkg\.dev/[a-z0-9-]+/[a-z0-9-]+/[a-z0-9._/-]+:[\w][\w.-]{0,127}$")


def config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())  # type: ignore[no-any-return]


def render(value: Any, subs: dict[str, str]) -> Any:
    """Substitute as Cloud Build does (${NAME} and $NAME), failing on an unknown name."""
    if isinstance(value, list):
        return [render(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: render(v, subs) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in subs, f"{name} is not a declared substitution"
        return subs[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, value)


def substitutions(**given: str) -> dict[str, str]:
    subs = {name: "" for name in BUILT_IN} | {"SHORT_SHA": "1a2b3c4"}
    declared = {k: render(v, subs) for k, v in config()["substitutions"].items()}
    return subs | declared | given


def test_cloudbuild_uses_only_declared_or_built_in_substitutions() -> None:
    text = (ROOT / "cloudbuild.yaml").read_text()
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    used = set(re.findall(r"\$\{?(\w+)", body))
    assert used <= set(config()["substitutions"]) | BUILT_IN
    assert all(name.startswith("_") for name in config()["substitutions"])  # user substitutions need a _


def test_cloudbuild_builds_the_root_dockerfile_and_pushes_the_commit_tag() -> None:
    cfg = render(config(), substitutions(_REGISTRY="europe-west1-docker.pkg.dev/my-proj/runners"))
    image = (
        "europe-west1-docker.pkg.dev/my-proj/runners/script-runner:1a2b3c4"  # _TAG from the trigger commit
    )
    build = next(step for step in cfg["steps"] if step["id"] == "build")
    assert build["name"] == "gcr.io/cloud-builders/docker"
    assert build["args"][0] == "build"
    assert "--file=Dockerfile" in build["args"]
    assert f"--tag={image}" in build["args"]
    assert build["args"][-1] == "."
    assert (ROOT / "Dockerfile").is_file()
    push = next(step for step in cfg["steps"] if step["id"] == "push")
    assert push["args"] == ["push", image]
    assert [s["id"] for s in cfg["steps"]] == ["check-substitutions", "build", "push"]
    assert AR_IMAGE.match(image)
    assert cfg["options"]["dynamic_substitutions"] is True


@pytest.mark.parametrize(
    ("given", "code", "message"),
    [
        pytest.param({"_REGISTRY": "europe-docker.pkg.dev/p/r"}, 0, "", id="trigger"),
        pytest.param({"_REGISTRY": "europe-docker.pkg.dev/p/r", "_TAG": "v1"}, 0, "", id="manual"),
        pytest.param({}, 1, "set _REGISTRY=REGION-docker.pkg.dev/PROJECT/REPO", id="no-registry"),
        pytest.param({"_REGISTRY": "europe-docker.pkg.dev/p/r", "_TAG": ""}, 1, "set _TAG", id="no-tag"),
    ],
)
def test_cloudbuild_first_step_refuses_missing_substitutions(
    given: dict[str, str], code: int, message: str
) -> None:
    subs = substitutions()
    if "_TAG" in given:
        subs["_TAG"] = given["_TAG"]
    subs |= {k: v for k, v in given.items() if k != "_TAG"}
    step = render(config(), subs)["steps"][0]
    assert step["id"] == "check-substitutions"
    assert step["entrypoint"] == "bash"
    done = subprocess.run(["bash", *step["args"]], capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode == code
    assert message in done.stderr


@pytest.mark.parametrize(
    "given",
    [
        pytest.param({}, id="no-registry"),
        pytest.param({"_REGISTRY": "europe-docker.pkg.dev/p/r", "SHORT_SHA": ""}, id="checkout-no-short-sha"),
    ],
)
def test_cloudbuild_missing_values_reach_the_check_step(given: dict[str, str]) -> None:
    # Cloud Build parses the top-level image lists when the build is submitted ("invalid build: invalid image
    # name ...: could not parse reference"), before any step: an empty registry or tag there would refuse the
    # build without the check step's message. Whatever is evaluated at submission must stay a valid reference.
    subs = substitutions() | given
    subs["_TAG"] = render(config()["substitutions"]["_TAG"], subs)
    cfg = render(config(), subs)
    at_submission = list(cfg.get("images") or []) + list((cfg.get("artifacts") or {}).get("images") or [])
    assert all(AR_IMAGE.match(image) for image in at_submission), at_submission
    assert cfg["steps"][0]["id"] == "check-substitutions"


def test_cloudbuild_steps_run_only_cloud_builders_images() -> None:
    # No Docker Hub pull (an unqualified name such as `bash`): the build trusts the images it already uses.
    assert {step["name"] for step in config()["steps"]} == {"gcr.io/cloud-builders/docker"}


def test_gcloudignore_uploads_only_what_the_image_build_reads() -> None:
    spec = pathspec.GitIgnoreSpec.from_lines((ROOT / ".gcloudignore").read_text().splitlines())
    assert not spec.match_file("Dockerfile")
    assert not spec.match_file("runner_image/entrypoint")
    assert not spec.match_file("runner_image/lib/gcs.sh")
    assert spec.match_file("dags/gcs_script_runner.py")
    assert spec.match_file(".git/config")
    assert spec.match_file("local/.run/gcs/data")
