"""PostgreSQL's folders under /var/tmp when the stack runs as root: one per clone, never inherited.

As root, postgres runs as a system user that cannot enter a clone whose parent is private (0700), so its
data lives outside the clone, under ``BASE``. Each folder belongs to one clone: a random id written into
the clone's run folder (``RUN/pg-id``) names it, and its ``owner`` file names that run folder. A clone made
again at the same path (CI clones into one fixed path on a machine it keeps) writes a new id and so gets an
empty database: the earlier clone's Airflow database held triggers encrypted with that clone's Fernet key,
and the new clone's triggerer died on them at start (stop 13's CI).

A folder whose clone is gone, or was made again, is stale; :func:`sweep` removes those whose postgres is
not running, so /var/tmp does not fill with databases nobody can reach.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

BASE = Path("/var/tmp")
PREFIX = "gcs-script-runner-pg-"
ID_FILE = "pg-id"
OWNER_FILE = "owner"


def home_for(run: Path, base: Path = BASE) -> Path:
    """The folder of the clone whose run folder is ``run``; its id is made (and written) on first call."""
    id_file = run / ID_FILE
    if not id_file.exists():
        run.mkdir(parents=True, exist_ok=True)
        id_file.write_text(secrets.token_hex(8) + "\n")
    return base / f"{PREFIX}{id_file.read_text().strip()}"


def take(home: Path, run: Path, base: Path = BASE) -> list[Path]:
    """What a start does before postgres runs: :func:`sweep` the stale folders, then :func:`claim` ``home``.

    :returns: the folders removed.
    """
    removed = sweep(keep=home, base=base)
    claim(home, run)
    return removed


def claim(home: Path, run: Path) -> None:
    """Record in ``home`` which run folder owns it (read by :func:`sweep` of other clones)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / OWNER_FILE).write_text(f"{run.resolve()}\n")


def _running(home: Path) -> bool:
    """Whether the postgres whose data is in ``home`` is alive (its postmaster.pid names a live process)."""
    try:
        pid = int((home / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(home: Path) -> bool:
    """Whether no clone owns ``home`` now: its owner's id names another folder, or the owner is gone.

    A folder without an owner file was made before owners were recorded (named after its clone's path).
    """
    try:
        run = Path((home / OWNER_FILE).read_text().strip())
    except OSError:
        return True
    try:
        return (run / ID_FILE).read_text().strip() != home.name.removeprefix(PREFIX)
    except OSError:
        return True


def sweep(keep: Path, base: Path = BASE) -> list[Path]:
    """Remove the stale folders under ``base`` whose postgres is not running, except ``keep``; return them."""
    removed = []
    for home in sorted(base.glob(f"{PREFIX}*")):
        if home == keep or not home.is_dir() or _running(home) or not _stale(home):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(home)
            removed.append(home)
    return removed
