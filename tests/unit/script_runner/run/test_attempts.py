from __future__ import annotations

import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from script_runner.config.compat import AirflowTaskTimeout
from script_runner.config.settings_loader import load_settings
from script_runner.run.attempts import (
    CANCEL_REASON,
    DEFERRED_CANCEL_REASON,
    attempt_number,
    attempt_record,
    base_record,
    cancel_target,
    count_status,
    deferred_cancel_record,
    first_attempt,
    lost_try_pod,
    max_tries,
    timeout_behind,
)
from script_runner.run.policy import Action, Outcome, Status


def _context(try_number: int = 1, reschedules: object = 0, tries: object = 3) -> dict[str, object]:
    ti = SimpleNamespace(try_number=try_number, max_tries=tries)
    return {"ti": ti, "task_reschedule_count": reschedules, "run_id": "r1"}


def test_first_attempt_is_try_one_never_rescheduled() -> None:
    assert first_attempt(_context())
    assert not first_attempt(_context(try_number=2))
    assert not first_attempt(_context(reschedules=1))
    assert not first_attempt(_context(reschedules=None))  # Airflow 2: unknown, so the ledger is read


def test_max_tries_is_none_when_airflow_does_not_say() -> None:
    assert max_tries(_context(tries=4)) == 4
    assert max_tries(_context(tries=None)) is None


def test_attempt_number_counts_failed_attempts_only_when_the_ledger_was_read() -> None:
    history = [{"status": "failed"}, {"status": "evicted"}]
    assert attempt_number(5, history, ledger_read=False) == 5
    assert attempt_number(5, history, ledger_read=True) == 2
    assert count_status(history, Status.EVICTED) == 1


def test_attempt_record_keeps_its_fields_in_ledger_order() -> None:
    started_at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    base = base_record(_context(), pod="p-1", memory="512Mi", cpu="250m", started_at=started_at)
    record = attempt_record(
        Outcome(Status.SKIPPED, None, "dep failed"),
        Action.SKIP,
        base=base,
        started=time.monotonic(),
        usage={"cpu_secs": 1.5},
        extra={"dependency": "a.sh"},
    )
    keys = list(record)
    assert keys[keys.index("action") :] == [
        "action",
        "dependency",
        "try_number",
        "max_tries",
        "pod",
        "memory",
        "cpu",
        "started",
        "ended",
        "secs",
        "cpu_secs",
    ]
    assert record["status"] == "skipped"
    assert record["action"] == "skip"
    assert record["started"] == "2026-12-01T03:00:00+00:00"
    assert record["max_tries"] == 3
    assert record["cpu_secs"] == 1.5
    assert 0 <= record["secs"] < 5


def test_cancel_target_is_empty_without_a_state_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCS_BUCKET", raising=False)
    settings = load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "local"})
    target = cancel_target(settings, run_id="r1", path="etl/a.sh", record={"pod": "p"})
    assert target["bucket"] == "b"
    assert target["path"] == "etl/a.sh"
    assert target["record"] == {"pod": "p"}
    no_bucket = load_settings(
        environ={"SCRIPT_RUNNER_SOURCE": "file:///tmp/x/", "SCRIPT_RUNNER_PRESET": "local"}, local_folder=True
    )
    assert cancel_target(no_bucket, run_id="r1", path="a.sh", record={}) == {}


def test_timeout_behind_finds_the_timeout_a_later_error_hides() -> None:
    try:
        try:
            raise AirflowTaskTimeout("timed out")
        except AirflowTaskTimeout:
            raise RuntimeError("Pod returned a failure") from None
    except RuntimeError as exc:
        hidden = exc
    # `from None` keeps __context__: KPO's finally block leaves the timeout there
    assert isinstance(timeout_behind(hidden), AirflowTaskTimeout)
    assert timeout_behind(RuntimeError("plain")) is None


def _pod(phase: str, try_number: str = "1", *, name: str = "sr-job-1", reason: str | None = None) -> object:
    meta = SimpleNamespace(name=name, labels={"try_number": try_number, "map_index": "3"})
    return SimpleNamespace(metadata=meta, status=SimpleNamespace(phase=phase, reason=reason))


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_pod_of_an_earlier_try_no_record_names_is_adopted(phase: str) -> None:
    assert lost_try_pod(_pod(phase), [], try_number=2)
    other = [{"status": "oom_killed", "pod": "sr-job-0"}]  # an older attempt's record, another pod
    assert lost_try_pod(_pod(phase), other, try_number=3)


@pytest.mark.parametrize(
    ("pod", "history", "try_number"),
    [
        (_pod("Running"), [], 2),  # running: KPO reattaches anyway
        (_pod("Pending"), [], 2),
        (_pod("Failed", reason="Evicted"), [], 2),  # evicted: a new pod, as KPO does
        (_pod("Succeeded"), [{"status": "success", "pod": "sr-job-1"}], 2),  # its outcome was read
        (_pod("Failed"), [{"status": "oom_killed", "pod": "sr-job-1"}], 2),  # a retry wants a new pod
        (_pod("Succeeded", try_number="2"), [], 2),  # this try's own pod
        (_pod("Succeeded", try_number="x"), [], 2),  # no try label: not ours to judge
    ],
)
def test_a_pod_that_is_not_a_lost_tries_finished_pod_is_left_to_kpo(
    pod: object, history: list[dict[str, object]], try_number: int
) -> None:
    assert not lost_try_pod(pod, history, try_number=try_number)


def test_deferred_cancel_record_keeps_the_attempt_fields_and_times_it() -> None:
    started = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    record = deferred_cancel_record(
        {"try_number": 1, "pod": "p", "started": started.isoformat()},
        now=datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC),
    )
    assert record["status"] == "cancelled"
    assert record["exit_code"] is None
    assert record["secs"] == 30.0
    assert record["pod"] == "p"
    assert record["action"] == "cancel"
    assert record["reason"] == DEFERRED_CANCEL_REASON


def test_deferred_cancel_record_has_the_fields_of_an_ended_attempt() -> None:
    """The report reads both records alike: the trigger's has every field the operator's has."""
    base = {"try_number": 2, "max_tries": 3, "pod": "p", "memory": "256Mi", "cpu": "250m", "started": "x"}
    ended = attempt_record(
        Outcome(Status.CANCELLED, None, CANCEL_REASON), Action.CANCEL, base=base, started=0.0, usage={}
    )
    assert set(deferred_cancel_record(base)) == set(ended)
