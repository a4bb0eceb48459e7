"""The environment of the stack's Airflow processes."""

from __future__ import annotations

import pytest

from local import airflow_env, config


def test_airflow_log_servers_listen_on_the_stacks_own_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two stacks side by side (a benchmark beside `make test`) must not both bind 8793/8794."""
    monkeypatch.setattr(config, "PORTS", config.Ports(worker_log=18793, trigger_log=18794))
    env = airflow_env.airflow_env()
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "18793"
    assert env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "18794"
