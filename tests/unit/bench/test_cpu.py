"""bench.cpu: a run's CPU seconds per part of the local stack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import cpu


def test_split_keeps_airflow_pods_the_double_and_the_google_doubles_apart() -> None:
    before = {
        "machine": 100.0,
        "parts": {"scheduler": (10.0, 5.0), "api-server": (3.0, 0.0), "kube": (1.0, 2.0), "gcs": (0.5, 0.0)},
    }
    after = {
        "machine": 160.0,
        "parts": {
            "scheduler": (12.0, 35.0),
            "api-server": (8.0, 0.0),
            "kube": (2.5, 14.0),
            "gcs": (0.9, 0.0),
        },
    }
    got = cpu.split(before, after)
    assert got == {
        "airflow": 37.0,
        "pods": 12.0,
        "kube_api": 1.5,
        "google": 0.4,
        "machine": 60.0,
        "airflow:scheduler": 32.0,
        "airflow:api-server": 5.0,
    }


def test_stack_pids_reads_the_pid_files_and_skips_broken_ones(tmp_path: Path) -> None:
    (tmp_path / "scheduler.pid").write_text("1234 5678\n")
    (tmp_path / "kube.pid").write_text("99\n")
    (tmp_path / "broken.pid").write_text("")
    assert cpu.stack_pids(tmp_path) == {"kube": 99, "scheduler": 1234}


def test_machine_seconds_counts_busy_ticks_only(tmp_path: Path) -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal
    stat.write_text(f"cpu  {ticks} 0 {ticks} {100 * ticks} {50 * ticks} 0 0 0 0 0\ncpu0 ...\n")
    assert cpu.machine_seconds(stat) == pytest.approx(2.0)


def test_snapshot_of_this_process_counts_its_cpu() -> None:
    snap = cpu.snapshot({"me": os.getpid()})
    own, _ = snap["parts"]["me"]
    assert own > 0
    assert snap["machine"] > 0
