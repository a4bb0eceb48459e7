from __future__ import annotations

import json
from typing import Any, ClassVar

from script_runner.config.compat import BaseNotifier
from script_runner.config.settings_loader import load_settings
from script_runner.report.notify import alert_events, failure_message, read_events, send

REPORT = {
    "dag_id": "d",
    "run_id": "r1",
    "summary": {"total": 3, "success": 1, "failed": 1, "rejected": 1},
    "scripts": [
        {"path": "a.sh", "status": "success", "exit_code": 0, "reason": ""},
        {"path": "b.sh", "status": "failed", "exit_code": 3, "reason": "script exited with code 3"},
    ],
    "rejected": [{"path": "c.sh", "reason": "bad cpu", "fix": "cpu=500m"}],
}


class RecordingNotifier(BaseNotifier):  # type: ignore[misc]
    """A real Airflow notifier (the SDK's BaseNotifier) that records instead of posting."""

    sent: ClassVar[list[tuple[str, str, Any]]] = []
    template_fields = ("text",)

    def __init__(self, *, channel: str, text: str) -> None:
        super().__init__()
        self.channel, self.text = channel, text

    def notify(self, context: Any) -> None:
        RecordingNotifier.sent.append((self.channel, self.text, context))


def test_failure_message_names_failed_and_rejected_scripts() -> None:
    msg = failure_message(REPORT)
    assert "b.sh: failed exit=3" in msg
    assert "c.sh: rejected: bad cpu (fix: cpu=500m)" in msg
    assert "a.sh" not in msg


def test_send_uses_the_configured_notifier_with_the_message() -> None:
    settings = load_settings(
        environ={
            "GCS_BUCKET": "b",
            "SCRIPT_RUNNER_NOTIFIER": f"{__name__}.RecordingNotifier",
            "SCRIPT_RUNNER_NOTIFIER_KWARGS": json.dumps({"channel": "#etl"}),
        }
    )
    assert send(settings, {"ti": "x"}, "hello") is True
    assert RecordingNotifier.sent[-1] == ("#etl", "hello", {"ti": "x"})


def test_send_never_raises_on_a_broken_notifier() -> None:
    settings = load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_NOTIFIER": "no.such.Notifier"})
    assert send(settings, {}, "hello") is False


def test_read_events_groups_by_script(make_bucket: Any, gcs_client: Any) -> None:
    bucket = make_bucket({}, prefix="data/")
    for name, body in [
        ("etl/x.sh/1.json", {"level": "info"}),
        ("etl/x.sh/2.json", {"level": "error"}),
        ("y.sh/1.json", {"level": "info"}),
    ]:
        bucket.blob(f"script-runner/events/run1/{name}").upload_from_string(json.dumps(body))
    events = read_events(gcs_client, bucket=bucket.name, root="script-runner", run_id="run1")
    assert [e["level"] for e in events["etl/x.sh"]] == ["info", "error"]
    assert list(events) == ["etl/x.sh", "y.sh"]


def test_alert_events_lists_only_error_level_script_events() -> None:
    events = {
        "etl/x.sh": [{"level": "info", "message": "loaded"}, {"level": "error", "message": "rows missing"}],
        "y.sh": [{"level": "CRITICAL", "message": "disk"}],
    }
    assert alert_events(events) == ["- etl/x.sh: notify error: rows missing", "- y.sh: notify CRITICAL: disk"]
