"""The stack's PostgreSQL: its data folder, its start, and the roles and databases Airflow and the demo use.

As root postgres runs as ``PG_USER`` (it refuses to run as root), in a folder of this clone's own under
/var/tmp (:mod:`local.pg_homes`). Imports :mod:`local.config`, :mod:`local.processes`,
:mod:`local.airflow_env` (the metadata database's name) and :mod:`local.pg_homes`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from local import config, pg_homes
from local.airflow_env import airflow_db
from local.processes import alive, log, spawn, wait_for

PG_BIN = Path(os.environ.get("SR_PG_BIN", "/usr/local/bin"))


PG_USER = "srpostgres"  # postgres refuses to run as root: a dedicated system user owns the data dir


def _pg(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", PG_USER, "--", *cmd]
    result: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        cmd, capture_output=True, text=True, timeout=120, cwd="/", **kw
    )
    return result


def pg_home() -> Path:
    """Where PostgreSQL keeps its data and socket.

    Under ``RUN`` when we run as an ordinary user. As root, postgres runs as ``PG_USER``, which cannot enter a
    clone whose parent is private (root's home, a ``mktemp -d`` folder, any 0700 directory): then a folder
    of this clone's own under /var/tmp (:mod:`local.pg_homes`: kept across up/down like ``RUN`` is; a new
    clone at the same path gets a new one, never the old database).
    """
    if os.geteuid() != 0:
        return config.RUN / "pg"
    override = os.environ.get("SR_PG_HOME")
    return Path(override) if override else pg_homes.home_for(config.RUN)


def start_postgres() -> None:
    if alive("postgres"):
        return
    home = pg_home()
    data = home / "data"
    if os.geteuid() == 0 and subprocess.run(["id", PG_USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )
    if os.geteuid() == 0 and not os.environ.get("SR_PG_HOME"):
        for stale in pg_homes.take(home, config.RUN):
            log(f"removed {stale}: the PostgreSQL folder of a clone that is gone or was made again")
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            home.chmod(0o700)
            shutil.chown(home, PG_USER)
            shutil.chown(data, PG_USER)
        out = _pg([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed: {out.stderr}")
    sock = home
    spawn(
        "postgres",
        [
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-p",
            str(config.PORTS.pg),
            "-h",
            "127.0.0.1",
            "-k",
            str(sock),
            "-c",
            "max_connections=300",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
        ],
        user=PG_USER,
    )
    psql = shutil.which("psql") or "psql"

    def ready() -> bool:
        return (
            subprocess.run(
                [psql, "-h", "127.0.0.1", "-p", str(config.PORTS.pg), "-U", "postgres", "-c", "select 1"],
                capture_output=True,
                timeout=10,
            ).returncode
            == 0
        )

    wait_for("PostgreSQL", ready, 60, "postgres")
    log(f"PostgreSQL on 127.0.0.1:{config.PORTS.pg}")


def create_databases() -> None:
    """The roles and databases (Airflow's of this version, and the demo's); those that exist are kept."""
    psql = shutil.which("psql") or "psql"
    for sql in (
        "CREATE ROLE airflow LOGIN PASSWORD 'airflow'",
        f"CREATE DATABASE {airflow_db()} OWNER airflow",
        "CREATE ROLE demo LOGIN PASSWORD 'demo'",
        "CREATE DATABASE demo OWNER demo",
    ):
        subprocess.run(
            [psql, "-h", "127.0.0.1", "-p", str(config.PORTS.pg), "-U", "postgres", "-c", sql],
            capture_output=True,
            timeout=30,
        )
