"""Wait for a quiet machine before a timed run (issue 26, goal 5): a figure taken under load is no verdict.

Each timed run waits until the 1-minute load average is below ``SR_BENCH_MAX_LOAD`` (2 by default), at
most ``SR_BENCH_QUIET_TIMEOUT`` seconds (1 800 by default; 0: do not wait), and records the load before
the wait, when the run started and after it. A run that started above the threshold is marked
``quiet: false``: its figures are recorded as taken under load.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_LOAD = 2.0
TIMEOUT = 1800.0
POLL = 10.0


def wait_quiet(
    *,
    max_load: float | None = None,
    timeout: float | None = None,
    load: Callable[[], float] = lambda: os.getloadavg()[0],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Wait until the 1-minute load average is below ``max_load``; what was seen, for the run's record.

    :param max_load: the threshold (default ``SR_BENCH_MAX_LOAD`` or 2).
    :param timeout: seconds to wait at most (default ``SR_BENCH_QUIET_TIMEOUT`` or 1 800).
    :param load: reads the 1-minute load average.
    :param sleep: waits (seconds).
    :param clock: a monotonic clock (seconds).
    """
    limit = float(os.environ.get("SR_BENCH_MAX_LOAD", MAX_LOAD)) if max_load is None else max_load
    most = float(os.environ.get("SR_BENCH_QUIET_TIMEOUT", TIMEOUT)) if timeout is None else timeout
    first = current = load()
    start = clock()
    while current >= limit and clock() - start < most:
        sleep(POLL)
        current = load()
    if current >= limit:
        print(
            f"[bench] load {current:.1f} still >= {limit} after {most:.0f} s: this run is under load",
            flush=True,
        )
    return {
        "load_before_wait": round(first, 2),
        "load_at_start": round(current, 2),
        "waited_s": round(clock() - start, 1),
        "max_load": limit,
        "quiet": current < limit,
    }


def after(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with the load average after the run, and ``load_avg_1m`` as [at start, after]."""
    now = round(os.getloadavg()[0], 2)
    return {**record, "load_after": now, "load_avg_1m": [record["load_at_start"], now]}
