from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from script_runner.cli import main


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
