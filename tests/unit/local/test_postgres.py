"""The local stack's PostgreSQL starts from a clone whose parent is private (0700), as under root's home or
mktemp -d, in a folder of the clone's own."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from local import config, postgres, processes
from tests.conftest import free_port


@pytest.mark.skipif(os.geteuid() != 0, reason="as a non-root user postgres runs as that user, under RUN")
@pytest.mark.skipif(not (postgres.PG_BIN / "initdb").exists(), reason="PostgreSQL binaries not installed")
def test_stack_postgres_starts_from_a_clone_under_a_private_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    run = private / "clone" / "local" / ".run"
    monkeypatch.setattr(config, "RUN", run)
    monkeypatch.setattr(config, "LOGS", run / "logs")
    monkeypatch.setattr(config, "PIDS", run / "pids")
    monkeypatch.setattr(config, "PORTS", config.Ports(pg=free_port()))
    monkeypatch.delenv("SR_PG_HOME", raising=False)  # the default: a folder of its own under /var/tmp
    home = postgres.pg_home()
    monkeypatch.chdir(private)  # the caller's cwd is unreachable for postgres' user too
    try:
        postgres.start_postgres()
        assert processes.alive("postgres")
        assert (home / "data" / "PG_VERSION").exists()
        assert not (run / "pg").exists()
    finally:
        processes.stop("postgres")
        shutil.rmtree(home, ignore_errors=True)
    assert not processes.alive("postgres")


def test_stack_pg_home_is_one_folder_per_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SR_PG_HOME", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(config, "RUN", tmp_path / "a" / "clone" / "local" / ".run")
    first = postgres.pg_home()
    assert postgres.pg_home() == first  # kept across up/down
    monkeypatch.setattr(config, "RUN", tmp_path / "another" / "clone" / "local" / ".run")
    assert postgres.pg_home() != first
