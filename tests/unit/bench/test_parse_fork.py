"""bench.parse_fork: the first parse of each DAG file in a forked child, its CPU measured in the child."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import parse_fork


def test_first_parse_ms_is_the_childs_cpu_for_one_execution(tmp_path: Path) -> None:
    busy = tmp_path / "busy.py"
    busy.write_text(
        "import time\nend = time.process_time() + 0.03\nwhile time.process_time() < end:\n    pass\n"
    )
    idle = tmp_path / "idle.py"
    idle.write_text("import time\ntime.sleep(0.05)\n")
    assert parse_fork.first_parse_ms(busy) >= 30  # CPU spent counts
    assert parse_fork.first_parse_ms(idle) < 30  # waiting does not


def test_a_dag_file_that_fails_in_the_child_is_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit(3)\n")
    with pytest.raises(RuntimeError, match="failed"):
        parse_fork.first_parse_ms(broken)
