"""The stack's processes: pid files that name only our own process, waits that explain a part's exit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from local import config, processes


def test_a_stale_pid_file_naming_another_process_is_not_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pid file left behind whose pid now belongs to another process (another stack's) is not ours."""
    monkeypatch.setattr(config, "PIDS", tmp_path)
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        (tmp_path / "triggerer.pid").write_text(f"{stranger.pid} 1")  # its pid, another start time
        assert processes.alive("triggerer") is None
        processes.stop("triggerer", timeout=1)
        assert stranger.poll() is None  # not signalled
        (tmp_path / "triggerer.pid").write_text(f"{stranger.pid} {processes._start_time(stranger.pid)}")
        assert processes.alive("triggerer") == stranger.pid  # the same process: alive, and stop stops it
        processes.stop("triggerer", timeout=5)
        assert stranger.wait(timeout=5) is not None
    finally:
        if stranger.poll() is None:
            stranger.kill()


def test_a_part_that_exits_while_waited_for_is_named_with_the_end_of_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI prints the exception, not the log file it names: the message carries the log's last lines."""
    monkeypatch.setattr(config, "PIDS", tmp_path / "pids")
    monkeypatch.setattr(config, "LOGS", tmp_path / "logs")
    processes.spawn(
        "triggerer", ["sh", "-c", "echo starting; echo 'OSError: address already in use' >&2; exit 1"]
    )
    with pytest.raises(RuntimeError) as err:
        processes.wait_for("Airflow's parts", lambda: False, 30, ("triggerer",))
    message = str(err.value)
    assert "triggerer exited during start" in message
    assert "starting" in message
    assert "address already in use" in message
