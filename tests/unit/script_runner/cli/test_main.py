from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from script_runner.cli.main import main


def test_cli_lint_reports_each_bad_script_with_line_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ok.sh").write_text("#!/bin/bash\n# runner: cpu=250m\necho ok\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.sh").write_text("#!/bin/bash\n\n# runner: timeout=soon\n")
    code = main(["--preset", "local", "lint", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{tmp_path}/sub/bad.sh:3: timeout: duration 'soon'" in out
    assert "fix: write timeout=30m" in out
    assert f"{tmp_path}/ok.sh: ok cpu=250m" in out
    assert "2 script(s), 1 with problems" in out


def test_cli_lint_clean_exits_zero(tmp_path: Path) -> None:
    (tmp_path / "ok.sh").write_text("#!/bin/bash\necho ok\n")
    assert main(["lint", str(tmp_path / "ok.sh")]) == 0


def test_cli_plan_json_against_the_emulator(
    make_bucket: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = make_bucket({"a.sh": "#!/bin/bash\n# runner: memory=1Gi\n", "b.sh": "# runner: cpu=0\n"})
    monkeypatch.setenv("GCS_BUCKET", bucket.name)
    code = main(["--preset", "local", "plan", "--json"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [s["path"] for s in plan["launch"]] == ["a.sh"]
    assert plan["launch"][0]["memory"] == "1Gi"
    assert plan["rejected"][0]["path"] == "b.sh"
    assert "more than 0" in plan["rejected"][0]["reason"]


def test_cli_settings_error_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--settings", "{oops", "plan"]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_cli_lint_reports_every_problem_of_a_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "bad.sh"
    script.write_text(
        "#!/bin/bash\n# runner: memory=lots cpu=-1\n# runner: env=LD_PRELOAD=/x.so colour=red timeout=soon\n"
    )
    assert main(["--preset", "local", "lint", str(script)]) == 1
    out = capsys.readouterr().out
    assert f"{script}:2: memory: 'lots' is not a Kubernetes quantity" in out
    assert f"{script}:2: cpu: cpu '-1' must be more than 0" in out
    assert f"{script}:3: env LD_PRELOAD is reserved" in out
    assert f"{script}:3: unknown directive 'colour'" in out
    assert f"{script}:3: timeout: duration 'soon'" in out
    assert "1 script(s), 1 with problems" in out


def test_cli_lint_and_discovery_agree_on_hidden_and_ignored_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from script_runner.config.settings_loader import load_settings
    from script_runner.discover.discovery import discover

    good = "#!/bin/bash\n# runner: cpu=250m\necho ok\n"
    for name in ("ok.sh", ".hidden.sh", "wip/draft.sh", ".cache/x.sh"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(good)
    (tmp_path / ".runnerignore").write_text("wip/\n")
    (tmp_path / "notes.txt").write_text("not a script")
    assert main(["--preset", "local", "lint", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path}/ok.sh: ok" in out
    assert f"{tmp_path}/.hidden.sh: ignored: hidden file" in out
    assert f"{tmp_path}/.cache/x.sh: ignored: hidden file" in out
    assert f"{tmp_path}/wip/draft.sh: ignored: excluded by 'wip/'" in out
    assert "notes.txt" not in out
    assert "1 script(s), 0 with problems, 3 ignored" in out
    settings = load_settings(
        environ={"SCRIPT_RUNNER_SOURCE": tmp_path.as_uri(), "SCRIPT_RUNNER_PRESET": "local"},
        local_folder=True,
    )
    assert [s["path"] for s in discover(settings).specs] == ["ok.sh"]
    # Named on the command line, a file discovery never runs fails the lint.
    assert main(["--preset", "local", "lint", str(tmp_path / ".hidden.sh")]) == 1
    assert "ignored: hidden file" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param(b"", "empty script (0 bytes)", id="empty"),
        pytest.param(b"\x00\x01binary", "binary content", id="binary"),
        pytest.param(
            b"#!/bin/bash\r\necho hi\r\n", "(fix: convert the file before uploading: dos2unix", id="crlf"
        ),
        pytest.param(b"# runner: memory=500m\n", "(fix: write memory=512Mi", id="milli-memory"),
    ],
)
def test_cli_lint_rejects_what_discovery_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, needle: str
) -> None:
    (tmp_path / "x.sh").write_bytes(content)
    assert main(["--preset", "local", "lint", str(tmp_path / "x.sh")]) == 1
    assert needle in capsys.readouterr().out


def test_cli_plan_shows_the_order_as_levels_and_explains_due_ness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scripts = {
        "extract.sh": "#!/bin/bash\necho e\n",
        "dims/a.sh": "#!/bin/bash\n# runner: schedule=0 6 * * 1\necho a\n",
        "load.sh": "#!/bin/bash\n# runner: after=extract.sh,dims/*.sh\necho l\n",
        "monthly.sh": "#!/bin/bash\n# runner: schedule=@monthly\necho m\n",
    }
    for name, text in scripts.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    source = ["--source", tmp_path.as_uri() + "/"]
    assert main(["--preset", "local", "plan", *source]) == 0
    out = capsys.readouterr().out
    assert "  level 0: dims/a.sh, extract.sh, monthly.sh\n" in out
    assert "  level 1: load.sh (after extract.sh, dims/a.sh)\n" in out

    at = ["--at", "2026-12-07T06:00:00Z", "--schedule", "@hourly"]  # a Monday
    assert main(["--preset", "local", "plan", *source, *at]) == 0
    out = capsys.readouterr().out
    assert "schedules checked against (2026-12-07T05:00:00Z, 2026-12-07T06:00:00Z]" in out
    assert "DUE dims/a.sh: schedule=0 6 * * 1 at 2026-12-07T06:00:00Z" in out
    assert "NOT DUE monthly.sh: schedule=@monthly: no cron time in" in out
    assert "next 2027-01-01T00:00:00Z" in out
    assert "3 to launch, 1 held back" in out

    assert main(["--preset", "local", "plan", *source, "--at", "monday"]) == 2

    # A Europe/Berlin DAG: Monday 06:00 there is 05:00 UTC in December, so the 05:00 UTC run has it.
    berlin = ["--at", "2026-12-07T05:00:00Z", "--schedule", "@hourly", "--timezone", "Europe/Berlin"]
    assert main(["--preset", "local", "plan", *source, *berlin]) == 0
    out = capsys.readouterr().out
    assert "(2026-12-07T04:00:00Z, 2026-12-07T05:00:00Z] (cron times in Europe/Berlin)" in out
    assert "DUE dims/a.sh: schedule=0 6 * * 1 at 2026-12-07T05:00:00Z" in out
    assert main(["--preset", "local", "plan", *source, *at, "--timezone", "Mars/Olympus"]) == 2


def test_cli_plan_prints_sizing_suggestions_from_the_history_in_the_state_bucket(
    make_bucket: Any, gcs_client: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from script_runner.report.sizing import SizingHistory

    bucket = make_bucket(
        {"big.sh": "#!/bin/bash\n# runner: memory=2Gi cpu=250m\n", "fit.sh": "# runner: memory=128Mi\n"}
    )
    history = SizingHistory(gcs_client, bucket=bucket.name, root="script-runner")
    for run in range(5):
        history.add(
            {
                "big.sh": {
                    "run_id": f"r{run}",
                    "mem_peak_bytes": (300 + run * 2) * 1024**2,
                    "avg_cores": 0.1,
                },
                "fit.sh": {"run_id": f"r{run}", "mem_peak_bytes": 60 * 1024**2, "avg_cores": 0.1},
            }
        )
    monkeypatch.setenv("GCS_BUCKET", bucket.name)
    main(["--preset", "local", "plan"])
    out = capsys.readouterr().out
    assert (
        "suggest: # runner: memory=512Mi (asked memory=2Gi, peak 308Mi over the last 5 runs → memory=512Mi)"
        in out
    )
    assert out.count("suggest:") == 1
    main(["--preset", "local", "plan", "--json"])
    plan = json.loads(capsys.readouterr().out)
    assert plan["suggestions"] == {
        "big.sh": {
            "directive": "memory=512Mi",
            "reason": "asked memory=2Gi, peak 308Mi over the last 5 runs → memory=512Mi",
        }
    }
