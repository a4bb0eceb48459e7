"""The benchmarks' wait for a quiet machine (a fake load average and clock: no real waiting)."""

from __future__ import annotations

from bench.quiet import wait_quiet


class _Machine:
    """A load average that falls by one per poll, and a clock the sleeps advance."""

    def __init__(self, loads: list[float]) -> None:
        self.loads, self.now, self.slept = loads, 0.0, 0.0

    def load(self) -> float:
        return self.loads.pop(0) if len(self.loads) > 1 else self.loads[0]

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_quiet_waits_until_the_load_is_below_the_threshold_and_records_it() -> None:
    machine = _Machine([4.5, 3.0, 2.1, 1.4])
    seen = wait_quiet(
        max_load=2, timeout=600, load=machine.load, sleep=machine.sleep, clock=lambda: machine.now
    )
    assert seen == {
        "load_before_wait": 4.5,
        "load_at_start": 1.4,
        "waited_s": 30.0,
        "max_load": 2,
        "quiet": True,
    }


def test_quiet_gives_up_after_the_timeout_and_marks_the_run_under_load() -> None:
    machine = _Machine([9.0])
    seen = wait_quiet(
        max_load=2, timeout=60, load=machine.load, sleep=machine.sleep, clock=lambda: machine.now
    )
    assert seen["quiet"] is False
    assert seen["load_at_start"] == 9.0
    assert 60 <= machine.slept <= 70


def test_quiet_does_not_wait_on_a_quiet_machine() -> None:
    machine = _Machine([0.3])
    seen = wait_quiet(
        max_load=2, timeout=600, load=machine.load, sleep=machine.sleep, clock=lambda: machine.now
    )
    assert (seen["quiet"], machine.slept) == (True, 0.0)
