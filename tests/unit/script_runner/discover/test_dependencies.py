"""after= dependencies: resolution against the listed scripts, cycles, held-back dependents, levels, verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from script_runner.discover.dependencies import levels, resolve, verdict, within
from script_runner.discover.spec import Rejected


def _specs(graph: dict[str, list[str]]) -> list[dict[str, Any]]:
    return [{"path": p, "uri": f"gs://b/data/{p}", **({"after": a} if a else {})} for p, a in graph.items()]


def test_dependencies_resolve_paths_and_globs_relative_to_the_source_root() -> None:
    graph = resolve(
        _specs(
            {
                "etl/extract.sh": [],
                "etl/dims/a.sh": [],
                "etl/dims/b.sh": [],
                "etl/load.sh": ["etl/extract.sh", "etl/dims/*.sh"],
                "etl/all.sh": ["etl/*.sh"],  # a glob never makes a script wait for itself
            }
        ),
        [],
    )
    after = {s["path"]: s.get("after", []) for s in graph.specs}
    assert after["etl/load.sh"] == ["etl/extract.sh", "etl/dims/a.sh", "etl/dims/b.sh"]
    assert "etl/all.sh" not in after["etl/all.sh"]
    assert "etl/load.sh" in after["etl/all.sh"]  # fnmatch's * crosses folders: etl/*.sh holds etl/dims/a.sh
    assert graph.rejected == []
    assert graph.skipped == []


def test_dependencies_reject_an_unknown_reference_and_hold_back_its_dependents() -> None:
    graph = resolve(
        _specs({"load.sh": ["extrct.sh"], "report.sh": ["load.sh"], "extract.sh": [], "ok.sh": []}), []
    )
    assert [s["path"] for s in graph.specs] == ["extract.sh", "ok.sh"]
    (rejected,) = graph.rejected
    assert rejected.path == "load.sh"
    assert "after=extrct.sh: no script of this source matches it" in rejected.reason
    assert graph.skipped == [
        {"path": "report.sh", "status": "skipped", "reason": "dependency load.sh was rejected"}
    ]


def test_dependencies_reject_every_script_of_a_cycle_naming_its_path() -> None:
    graph = resolve(
        _specs({"a.sh": ["b.sh"], "b.sh": ["c.sh"], "c.sh": ["a.sh"], "d.sh": ["c.sh"], "e.sh": []}), []
    )
    assert [s["path"] for s in graph.specs] == ["e.sh"]
    reasons = {r.path: r.reason for r in graph.rejected}
    assert set(reasons) == {"a.sh", "b.sh", "c.sh"}
    assert reasons["a.sh"] == "after= forms a cycle (each waits for the next): a.sh -> b.sh -> c.sh -> a.sh"
    assert graph.skipped == [{"path": "d.sh", "status": "skipped", "reason": "dependency c.sh was rejected"}]


def test_dependencies_self_reference_is_a_cycle() -> None:
    graph = resolve(_specs({"a.sh": ["a.sh"]}), [])
    assert [r.reason for r in graph.rejected] == [
        "after= forms a cycle (each waits for the next): a.sh -> a.sh"
    ]


def test_dependencies_on_a_script_rejected_by_discovery_skip_transitively() -> None:
    bad = Rejected(path="extract.sh", uri="", reason="memory=lots is not a quantity")
    graph = resolve(_specs({"load.sh": ["extract.sh"], "report.sh": ["load.sh"]}), [bad])
    assert graph.specs == []
    assert graph.rejected == []  # extract.sh is a known (rejected) script: the reference itself is fine
    assert {s["path"]: s["reason"] for s in graph.skipped} == {
        "load.sh": "dependency extract.sh was rejected",
        "report.sh": "dependency load.sh was skipped (dependency extract.sh was rejected)",
    }


def test_dependencies_levels_order_a_fan_in() -> None:
    graph = resolve(_specs({"x.sh": [], "y.sh": [], "join.sh": ["x.sh", "y.sh"], "last.sh": ["join.sh"]}), [])
    assert levels(graph.specs) == {"x.sh": 0, "y.sh": 0, "join.sh": 1, "last.sh": 2}


def test_dependencies_outside_the_run_are_not_waited_for() -> None:
    specs = within([{"path": "load.sh", "after": ["extract.sh", "dims.sh"]}, {"path": "dims.sh"}])
    assert specs[0]["after"] == ["dims.sh"]
    assert specs[0]["notes"] == ["after: not in this run, not waited for: extract.sh"]


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        pytest.param([], ("wait", "x.sh has not ended yet"), id="no-attempt-yet"),
        pytest.param([{"action": "retry"}], ("wait", "x.sh is being retried"), id="retrying"),
        pytest.param([{"action": "retry"}, {"action": "done"}], ("ok", ""), id="succeeded"),
        pytest.param([{"action": "skip", "reason": "done-marker"}], ("ok", ""), id="done-marker"),
        pytest.param([{"action": "fail"}], ("skip", "dependency x.sh failed"), id="failed"),
        pytest.param([{"action": "cancel"}], ("skip", "dependency x.sh was cancelled"), id="cancelled"),
        pytest.param(
            [{"action": "skip", "dependency": "w.sh", "reason": "dependency w.sh failed"}],
            ("skip", "dependency x.sh was skipped (dependency w.sh failed)"),
            id="skipped-for-its-own-dependency",
        ),
    ],
)
def test_dependencies_verdict_from_the_ledger(
    records: list[dict[str, Any]], expected: tuple[str, str]
) -> None:
    assert verdict("x.sh", records) == expected


def test_dependencies_locate_names_each_dependencys_task_instance() -> None:
    from script_runner.discover.dependencies import locate

    planned = [[{"path": "a.sh"}, {"path": "b.sh"}], [{"path": "c.sh", "after": ["b.sh", "gone.sh"]}]]
    locate(planned, ["run_scripts_0", "run_scripts_1"])
    assert planned[1][0]["after_tasks"] == {"b.sh": ["run_scripts_0", 1]}
    assert "after_tasks" not in planned[0][0]


FAILED = [{"action": "fail", "max_tries": 1}]


def test_dependencies_two_cycles_sharing_a_script_reject_the_tangle_once() -> None:
    """Issue 25: a -> b -> a and b -> c -> b share b.sh; discovery used to crash with a KeyError."""
    specs = [
        {"path": "a.sh", "after": ["b.sh"]},
        {"path": "b.sh", "after": ["a.sh", "c.sh"]},
        {"path": "c.sh", "after": ["b.sh"]},
        {"path": "d.sh", "after": ["a.sh"]},
        {"path": "e.sh"},
    ]
    graph = resolve(specs, [])
    assert sorted(r.path for r in graph.rejected) == ["a.sh", "b.sh", "c.sh"]
    assert graph.rejected[0].reason == (
        "after= forms a cycle (each waits for the next): a.sh -> b.sh -> a.sh (and c.sh, tangled with it)"
    )
    assert graph.skipped == [{"path": "d.sh", "status": "skipped", "reason": "dependency a.sh was rejected"}]
    assert [s["path"] for s in graph.specs] == ["e.sh"]


@pytest.mark.parametrize(
    ("records", "state", "expected"),
    [
        pytest.param(
            FAILED, "queued", ("wait", "x.sh has not ended yet (Airflow: queued)"), id="cleared-after-failing"
        ),
        pytest.param(
            FAILED, "running", ("wait", "x.sh has not ended yet (Airflow: running)"), id="rerunning"
        ),
        pytest.param([], None, ("wait", "x.sh has not ended yet (Airflow: none)"), id="not-scheduled-yet"),
        pytest.param([{"action": "cancel"}], "success", ("ok", ""), id="marked-success-while-running"),
        pytest.param([], "success", ("ok", ""), id="marked-success-while-waiting"),
        pytest.param([{"action": "done"}], "success", ("ok", ""), id="succeeded"),
        pytest.param(FAILED, "failed", ("skip", "dependency x.sh failed"), id="failed"),
        pytest.param(
            [{"action": "done"}],
            "failed",
            ("skip", "dependency x.sh ended failed in Airflow"),
            id="marked-failed",
        ),
        pytest.param(
            [],
            "failed",
            ("skip", "dependency x.sh ended failed in Airflow without a recorded attempt"),
            id="marked-failed-while-waiting",
        ),
        pytest.param([{"action": "skip", "reason": "done-marker"}], "skipped", ("ok", ""), id="done-marker"),
        pytest.param(
            [{"action": "skip", "dependency": "w.sh", "reason": "dependency w.sh failed"}],
            "skipped",
            ("skip", "dependency x.sh was skipped (dependency w.sh failed)"),
            id="skipped-for-its-own-dependency",
        ),
        pytest.param(
            [],
            "upstream_failed",
            ("skip", "dependency x.sh ended upstream_failed in Airflow without a recorded attempt"),
            id="upstream-failed",
        ),
    ],
)
def test_dependencies_current_verdict_follows_airflows_state_then_the_ledger(
    records: list[dict[str, Any]], state: str | None, expected: tuple[str, str]
) -> None:
    from script_runner.discover.dependencies import current_verdict

    assert current_verdict("x.sh", records, state) == expected
