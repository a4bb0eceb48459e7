"""The soak's verdict on lost tries: a retry is spent only by a counted failure the fault does not explain."""

from __future__ import annotations

import pytest

from bench.soak import spent_a_retry


def _records(*statuses: str) -> list[dict[str, str]]:
    return [{"status": s} for s in statuses]


@pytest.mark.parametrize(
    ("kind", "statuses"),
    [
        ("plain", ["success"]),
        ("oom", ["oom_killed", "success"]),
        ("evict", ["evicted", "success"]),
        # a lost try took the eviction's record with it: the script ran once and kept its retries
        ("evict", ["success"]),
        # a lost try after the eviction was recorded: no failure counted, still one success
        ("evict", ["evicted", "evicted", "success"]),
        ("cancel", ["cancelled"]),
        ("cancel", ["success"]),  # the cancel came too late: nothing failed
        ("plain", []),  # no record at all is the report's check, not a spent retry
    ],
)
def test_a_run_its_fault_explains_spent_no_retry(kind: str, statuses: list[str]) -> None:
    assert not spent_a_retry(kind, _records(*statuses))


@pytest.mark.parametrize(
    ("kind", "statuses"),
    [
        ("plain", ["failed", "success"]),  # a failure no fault explains
        ("oom", ["oom_killed", "failed", "success"]),
        ("evict", ["evicted", "error", "success"]),
        ("plain", ["failed"]),  # ended failed
        ("oom", ["oom_killed", "oom_killed"]),  # the OOM retry's own failure is one too many
    ],
)
def test_a_failure_beyond_the_fault_or_a_wrong_end_spent_a_retry(kind: str, statuses: list[str]) -> None:
    assert spent_a_retry(kind, _records(*statuses))
