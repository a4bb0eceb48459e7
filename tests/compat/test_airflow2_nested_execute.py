"""The real DAG on Airflow 2.11 with nested operators forbidden (issue 16, item 4).

Airflow 2's ExecutorSafeguard turns ``ScriptPodOperator.execute`` calling ``KubernetesPodOperator.execute``
into "cannot be called outside TaskInstance!": a warning on every launch, an error (no script runs) when
the operator has ``allow_nested_operators=False``. This test runs the whole DAG (discover, the mapped pod
task, report) with ``dag.test()`` — Airflow's own TaskInstance path, sentinel included — against the GCS
emulator and the Kubernetes double (process kubelet running the real entrypoint), with that switch off on
every task, and reads the task logs.

Runs only under Airflow 2 (``make unit-af2`` builds that virtualenv from ``compat/airflow-2.11.1.txt``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

airflow = pytest.importorskip("airflow")
if not airflow.__version__.startswith("2."):
    pytest.skip("Airflow 2 only (make unit-af2)", allow_module_level=True)

from tests.conftest import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-token-value"

# Runs in a fresh interpreter: Airflow reads AIRFLOW_HOME and its config when first imported.
DRIVER = r"""
import sys
from script_runner.dag import build_dag

dag = build_dag()
for task in dag.tasks:
    if hasattr(task, "partial_kwargs"):  # the mapped run task: every unmapped instance gets it
        task.partial_kwargs["allow_nested_operators"] = False
    else:
        task.allow_nested_operators = False
run = dag.test()
print("DAGRUN_STATE", run.state)
for ti in run.get_task_instances():
    print("TI", ti.task_id, ti.map_index, ti.state)
"""

HELLO = "#!/usr/bin/env bash\n# runner: cpu=100m memory=64Mi\necho hello from the pod\n"
FAILS = (
    "#!/usr/bin/env bash\n# runner: retries=0\n# runner: env=API_TOKEN=" + SECRET + "\n"
    "echo failing on purpose\nexit 3\n"
)


@pytest.fixture
def kube_double(tmp_path: Path) -> Iterator[Path]:
    """The Kubernetes double with a process kubelet; pods run runner_image/entrypoint as a process."""
    state = tmp_path / "kube"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.kube_double",
            "--port",
            str(free_port()),
            "--state-dir",
            str(state),
            "--kubelet",
            "process",
            "--path-map",
            f"/opt/runner={ROOT / 'runner_image'}",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not (state / "ready").exists():
        assert proc.poll() is None, "the double exited at start"
        assert time.monotonic() < deadline, "the double did not start"
        time.sleep(0.1)
    try:
        yield state / "kubeconfig"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def run_dag(tmp_path: Path, *, bucket: str, gcs_url: str, kubeconfig: Path) -> str:
    home = tmp_path / "airflow"
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]),
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",  # the safeguard is off in unit-test mode
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(
            {"conn_type": "google_cloud_platform", "extra": {"project": "test-project", "is_anonymous": True}}
        ),
        "STORAGE_EMULATOR_HOST": gcs_url,
        "GCS_BUCKET": bucket,
        "SCRIPT_RUNNER_PRESET": "local",
        "SCRIPT_RUNNER_CONFIG_FILE": str(kubeconfig),
        "SCRIPT_RUNNER_KUBERNETES_CONN_ID": "",
        "SCRIPT_RUNNER_SCHEDULE": "none",
        "SCRIPT_RUNNER_EXTRA_ENV": json.dumps({"STORAGE_EMULATOR_HOST": gcs_url}),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "dags"), str(ROOT)]),
    }
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    out = subprocess.run(
        [sys.executable, "-c", DRIVER],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return out.stdout + out.stderr


def task_logs(tmp_path: Path, task_id: str) -> str:
    """Every log file Airflow wrote for one task (all map indexes and attempts)."""
    logs = (tmp_path / "airflow" / "logs").rglob(f"task_id={task_id}/**/*.log")
    return "\n".join(p.read_text(errors="replace") for p in sorted(logs))


def test_dag_runs_its_pods_on_airflow2_with_nested_operators_forbidden(
    tmp_path: Path, kube_double: Path, gcs_emulator: str, make_bucket: Any, gcs_client: Any
) -> None:
    bucket = make_bucket({"hello.sh": HELLO, "fails.sh": FAILS})
    text = run_dag(tmp_path, bucket=bucket.name, gcs_url=gcs_emulator, kubeconfig=kube_double)
    text += "\n".join(task_logs(tmp_path, t) for t in ("discover", "run_scripts", "report"))

    assert "cannot be called outside TaskInstance" not in text, text[-4000:]
    states = {
        line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("TI run_scripts ")
    }
    assert sorted(states.values()) == ["failed", "success"], text[-4000:]
    assert "hello from the pod" in text  # the pod really ran, its log streamed into the task log
    # issue 11 item 3: no task log shows an env value (KPO's pod spec on failure, a task's return value)
    assert "failing on purpose" in text
    assert SECRET not in text, "an env value reached a task log"
    reports = [b for b in bucket.list_blobs(prefix="script-runner/reports/") if b.name.endswith(".json")]
    report = json.loads(reports[0].download_as_bytes())
    assert {r["path"]: r["status"] for r in report["scripts"]} == {
        "fails.sh": "failed",
        "hello.sh": "success",
    }
    # Right-sizing on Airflow 2 too: the end line's usage (rusage with the process kubelet) reached the
    # ledger and the report, and the HTML page was written beside the JSON.
    assert all(r["usage"] == "rusage" and r["cpu_secs"] is not None for r in report["scripts"]), report
    assert bucket.blob(reports[0].name.removesuffix(".json") + ".html").exists()
