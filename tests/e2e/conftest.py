"""The local stack for end-to-end tests: started once per session and stopped after (nothing left)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from local import config as local_config
from local import stack as local_stack
from local.airflow_client import AirflowClient
from tests.e2e.harness import ScriptRunnerHarness


@pytest.fixture(scope="session")
def stack() -> Iterator[AirflowClient]:
    """Airflow (real scheduler, LocalExecutor, PostgreSQL), the GCS emulator and the Kubernetes double."""
    reuse = os.environ.get("SR_REUSE_STACK") == "1"
    os.environ.setdefault("SR_E2E_DAGS", "1")  # the tests' own DAGs (tests/e2e/dags) beside the runner's
    local_stack.up()
    os.environ["STORAGE_EMULATOR_HOST"] = local_config.gcs_url()
    client = AirflowClient(f"http://127.0.0.1:{local_config.PORTS.airflow}")
    try:
        yield client
    finally:
        if not reuse:
            local_stack.down()


@pytest.fixture
def runner(stack: AirflowClient) -> Any:
    return ScriptRunnerHarness(
        stack, bucket=local_config.BUCKET, kube_url=f"http://127.0.0.1:{local_config.PORTS.kube}"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e/ needs the local stack: mark it e2e (deselected by `make unit`)."""
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
