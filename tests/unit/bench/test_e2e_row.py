"""bench.e2e's run helpers: the serial edges of a run and the order of the DAGs in each repeat."""

from __future__ import annotations

from bench.e2e import _gap, run_order


def test_gap_is_seconds_between_iso_or_epoch_moments_and_none_when_one_is_missing() -> None:
    assert _gap("2026-12-06T02:32:46.5+00:00", "2026-12-06T02:32:48.0Z") == 1.5
    assert _gap(100.0, "1970-01-01T00:01:42.25+00:00") == 2.25
    assert _gap(None, 5.0) is None
    assert _gap("2026-12-06T02:32:46Z", None) is None


def test_run_order_reverses_every_other_repeat_so_no_dag_always_runs_first() -> None:
    dags = [("ours", {"rerun": True}), ("bare", {})]
    assert [run_order(dags, r)[0][0] for r in range(4)] == ["ours", "bare", "ours", "bare"]
    assert run_order(dags, 1) == [("bare", {}), ("ours", {"rerun": True})]
    assert dags == [("ours", {"rerun": True}), ("bare", {})]  # the caller's list is left as it was
