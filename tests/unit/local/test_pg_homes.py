"""Each clone's PostgreSQL folder under /var/tmp is its own: a clone made again never inherits a database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from local import pg_homes


def _clone(root: Path, name: str = "clone") -> Path:
    run = root / name / "local" / ".run"
    run.mkdir(parents=True)
    return run


def _up(run: Path, base: Path) -> Path:
    """What the stack does at start: find its folder, take it (sweeping the stale ones), write data."""
    home = pg_homes.home_for(run, base)
    pg_homes.take(home, run, base)
    (home / "data").mkdir(exist_ok=True)
    (home / "data" / "PG_VERSION").write_text("17\n")
    return home


def test_a_clone_made_again_at_the_same_path_gets_a_new_folder_and_the_old_one_goes(tmp_path: Path) -> None:
    base = tmp_path / "var-tmp"
    base.mkdir()
    run = _clone(tmp_path / "work")
    first = _up(run, base)
    assert _up(run, base) == first  # the same clone keeps its database across down/up
    assert (first / "data" / "PG_VERSION").exists()

    shutil.rmtree(tmp_path / "work")  # CI removes its clone and clones again into the same path
    run = _clone(tmp_path / "work")
    second = pg_homes.home_for(run, base)
    assert second != first
    assert not (second / "data").exists()  # a new database, not the earlier clone's
    _up(run, base)
    assert not first.exists()  # the earlier clone's folder is swept at the next start


def test_the_folder_of_another_live_clone_is_kept(tmp_path: Path) -> None:
    base = tmp_path / "var-tmp"
    base.mkdir()
    other = _up(_clone(tmp_path / "one"), base)
    mine = _up(_clone(tmp_path / "two"), base)
    assert other.exists()
    assert mine.exists()


def test_a_stale_folder_whose_postgres_still_runs_is_kept(tmp_path: Path) -> None:
    base = tmp_path / "var-tmp"
    base.mkdir()
    run = _clone(tmp_path / "work")
    old = _up(run, base)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (old / "data" / "postmaster.pid").write_text(f"{sleeper.pid}\n{old / 'data'}\n")
        (run / pg_homes.ID_FILE).unlink()  # the clone made again: a new id
        _up(run, base)
        assert old.exists()  # never pull the data from under a running postgres
    finally:
        sleeper.kill()
        sleeper.wait()
    _up(run, base)
    assert not old.exists()


def test_a_folder_from_before_owners_were_recorded_is_swept_unless_running(tmp_path: Path) -> None:
    base = tmp_path / "var-tmp"
    legacy = base / f"{pg_homes.PREFIX}fd61a6d4c019"
    (legacy / "data").mkdir(parents=True)
    unrelated = base / "something-else"
    unrelated.mkdir()
    _up(_clone(tmp_path / "work"), base)
    assert not legacy.exists()
    assert unrelated.exists()


def test_the_id_file_is_the_only_thing_written_into_the_clone(tmp_path: Path) -> None:
    run = tmp_path / "clone" / "local" / ".run"
    home = pg_homes.home_for(run, tmp_path)
    assert sorted(p.name for p in run.iterdir()) == [pg_homes.ID_FILE]
    assert home.parent == tmp_path
    assert home.name.startswith(pg_homes.PREFIX)
    assert not home.exists()  # made by the stack's start, not by asking
    assert os.stat(run / pg_homes.ID_FILE).st_size > 0
