"""The trigger's options (params and raw conf), and how they, schedules and dry runs narrow a run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from script_runner.config.params import RunOptions, dag_params, run_options
from script_runner.config.settings_loader import load_settings
from script_runner.discover.discovery import DiscoveryResult, discover
from script_runner.discover.run_scope import narrow
from script_runner.discover.schedule import run_window
from script_runner.discover.spec import Rejected
from script_runner.report.build import build_report, problems, to_markdown


def test_params_every_trigger_form_field_has_a_description() -> None:
    params = dag_params()
    assert set(params) == {"only", "exclude", "dry_run", "rerun", "reason", "due_at"}
    for name, param in params.items():
        assert param.description, name
        param.resolve()  # each default is valid against its own schema


def test_params_raw_conf_of_older_triggers_still_works() -> None:
    defaults = {"only": [], "exclude": [], "dry_run": False, "rerun": False, "reason": "", "due_at": None}
    assert run_options(defaults, {"rerun": True}).rerun is True
    assert run_options({}, '{"rerun": true}').rerun is True  # conf as JSON text
    opts = run_options(defaults, {"only": "etl/*.sh, load.sh", "reason": " backfill after outage "})
    assert opts == RunOptions(only=["etl/*.sh", "load.sh"], reason="backfill after outage")
    assert run_options(None, None) == RunOptions()


def _result() -> DiscoveryResult:
    specs = [
        {"path": "etl/extract.sh"},
        {"path": "etl/load.sh", "after": ["etl/extract.sh"]},
        {"path": "weekly.sh", "schedule": "0 6 * * 1"},
        {"path": "monthly.sh", "schedule": "@monthly"},
    ]
    rejected = [Rejected(path="broken.sh", uri="", reason="bad")]
    return DiscoveryResult(specs=specs, rejected=rejected)


def test_run_scope_only_leaves_out_the_rest_rejected_scripts_included() -> None:
    result = _result()
    left_out = narrow(result, RunOptions(only=["load.sh"]), None)
    assert [s["path"] for s in result.specs] == ["etl/load.sh"]
    assert result.specs[0]["notes"] == ["after: not in this run, not waited for: etl/extract.sh"]
    assert "after" not in result.specs[0]
    assert result.rejected == []  # another script's problem does not fail a run of just load.sh
    assert left_out == 4


def test_run_scope_scheduled_run_holds_scripts_that_are_not_due() -> None:
    result = _result()
    monday_6 = datetime(2026, 12, 7, 6, tzinfo=UTC)
    window = run_window(run_type="scheduled", start=monday_6, end=monday_6, dag_schedule="@hourly")
    narrow(result, RunOptions(), window)
    assert [s["path"] for s in result.specs] == ["etl/extract.sh", "etl/load.sh", "weekly.sh"]
    (held,) = result.held
    assert held["path"] == "monthly.sh"
    assert held["status"] == "not due"
    assert held["reason"].startswith(
        "schedule=@monthly: no cron time in (2026-12-07T05:00:00Z, 2026-12-07T06"
    )
    assert held["reason"].endswith("next 2027-01-01T00:00:00Z")


def test_run_scope_dry_run_launches_nothing_and_reports_the_order() -> None:
    result = _result()
    narrow(result, RunOptions(dry_run=True, exclude=["*ly.sh"]), None)
    assert result.specs == []
    assert result.held == [
        {"path": "etl/extract.sh", "status": "dry run", "reason": "would run at level 0"},
        {"path": "etl/load.sh", "status": "dry run", "reason": "would run at level 1, after etl/extract.sh"},
    ]
    report = build_report(
        dag_id="d",
        run_id="r",
        source="gs://b/data/",
        shards=[[]],
        rejected=[],
        attempts={},
        states={},
        held=result.held,
        run={"dry_run": True, "reason": "checking the new folder"},
    )
    assert report["summary"] == {"total": 2, "dry run": 2}
    assert problems(report["summary"]) == {}  # a dry run is not a failed run
    markdown = to_markdown(report)
    assert "**Dry run**: nothing was launched" in markdown
    assert "Reason: checking the new folder" in markdown
    assert "| etl/load.sh | dry run | 0 | 0 |" in markdown


def test_discover_resolves_after_and_reads_a_spaced_schedule(make_bucket: Any, gcs_client: Any) -> None:
    bucket = make_bucket(
        {
            "etl/extract.sh": "#!/bin/bash\n# runner: schedule=0 6 * * 1 retries=0\necho e\n",
            "etl/load.sh": "#!/bin/bash\n# runner: after=etl/extract.sh,etl/dims/*.sh\necho l\n",
            "etl/dims/a.sh": "#!/bin/bash\necho a\n",
            "typo.sh": "#!/bin/bash\n# runner: after=etl/extrakt.sh\necho t\n",
            "late.sh": "#!/bin/bash\n# runner: after=typo.sh\n# runner: schedule=@weekly\necho t\n",
            "bad_cron.sh": '#!/bin/bash\n# runner: schedule="0 6 * *"\necho t\n',
        }
    )
    settings = load_settings(environ={"GCS_BUCKET": bucket.name, "SCRIPT_RUNNER_PRESET": "local"})
    result = discover(settings, client=gcs_client)
    specs = {s["path"]: s for s in result.specs}
    assert specs["etl/extract.sh"]["schedule"] == "0 6 * * 1"
    assert specs["etl/extract.sh"]["retries"] == 0  # the cron fields did not swallow the next directive
    assert specs["etl/load.sh"]["after"] == ["etl/extract.sh", "etl/dims/a.sh"]
    rejected = {r.path: r for r in result.rejected}
    assert "after=etl/extrakt.sh: no script of this source matches it" in rejected["typo.sh"].reason
    assert "did you mean etl/extract.sh" in rejected["typo.sh"].fix
    assert rejected["bad_cron.sh"].line == 2
    assert "five-field cron" in rejected["bad_cron.sh"].reason
    assert result.held == [
        {"path": "late.sh", "status": "skipped", "reason": "dependency typo.sh was rejected"}
    ]


def test_run_scope_notes_a_schedule_finer_than_the_dags() -> None:
    result = DiscoveryResult(specs=[{"path": "often.sh", "schedule": "*/15 * * * *"}, {"path": "plain.sh"}])
    monday = datetime(2026, 12, 7, tzinfo=UTC)
    window = run_window(run_type="scheduled", start=monday, end=monday, dag_schedule="@daily")
    narrow(result, RunOptions(), window)
    often, plain = result.specs
    assert often["notes"] == [
        "schedule=*/15 * * * * fires more than once in (2026-12-06T00:00:00Z, 2026-12-07T00:00:00Z]: "
        "it runs once per run (the DAG's SCRIPT_RUNNER_SCHEDULE is coarser)"
    ]
    assert "notes" not in plain
