"""bench.entrypoint_cpu: the entrypoint's CPU per run and the programs it execs."""

from __future__ import annotations

import shutil

import pytest

from bench import entrypoint_cpu

# strace -f -e trace=execve of a run: PATH lookups that fail, an execve split by another process's event,
# a fork that execs nothing, and signal lines.
STRACE = """\
100 execve("/opt/runner/entrypoint", ["/opt/runner/entrypoint"], 0x7ffd /* 40 vars */) = 0
100 execve("/root/bin/bash", ["bash", "/opt/runner/entrypoint"], 0x7ffc /* 40 vars */) = -1 ENOENT (No such file)
100 execve("/usr/bin/bash", ["bash", "/opt/runner/entrypoint"], 0x7ffc /* 40 vars */) = 0
101 execve("/usr/bin/curl", ["curl", "-s"], 0x5648 /* 41 vars */ <unfinished ...>
102 +++ exited with 0 +++
101 <... execve resumed>)                   = 0
100 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=101} ---
101 +++ exited with 0 +++
103 execve("/usr/bin/nosuch", ["nosuch"], 0x5648 /* 41 vars */ <unfinished ...>
103 <... execve resumed>)                   = -1 ENOENT (No such file or directory)
103 +++ exited with 127 +++
100 +++ exited with 0 +++
"""


def test_parse_strace_counts_successful_execs_and_every_process() -> None:
    assert entrypoint_cpu.parse_strace(STRACE) == {
        "execs": 3,
        "processes": 4,
        "programs": {"entrypoint": 1, "bash": 1, "curl": 1},
    }


def test_the_benchmark_runs_the_entrypoint_against_the_doubles() -> None:
    got = entrypoint_cpu.measure(runs=1, trace=shutil.which("strace") is not None)
    assert got["runs"] == 1
    assert got["cpu_ms_per_run"] > 0
    if got["execs"] is None:
        pytest.skip("strace is not installed: no exec count")
    # The script's fetch and the token: curl twice; no jq, date or mktemp on the way.
    assert got["execs"]["curl"] == 2
    assert not {"jq", "date", "mktemp", "dirname", "base64"} & set(got["execs"])
    assert got["execs_per_run"] == sum(got["execs"].values())
