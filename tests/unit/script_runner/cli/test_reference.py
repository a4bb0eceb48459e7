"""The references in docs/reference/ are generated from the code and must match it."""

from __future__ import annotations

from pathlib import Path

import pytest

from script_runner.cli.main import _parser
from script_runner.cli.reference import main, render_all
from script_runner.config.settings import RunnerSettings
from script_runner.config.settings_docs import DESCRIPTIONS, GROUPS

ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize("name", ["directives.md", "settings.md", "cli.md"])
def test_reference_committed_file_is_what_the_code_generates(name: str) -> None:
    committed = (ROOT / "docs" / "reference" / name).read_text()
    assert committed == render_all(_parser())[name], (
        f"docs/reference/{name} differs from the code (fix: python -m script_runner.cli.reference)"
    )


def test_reference_every_setting_is_described_in_a_known_group() -> None:
    assert set(DESCRIPTIONS) == set(RunnerSettings.model_fields)
    assert {group for group, _ in DESCRIPTIONS.values()} <= set(GROUPS)


def test_reference_check_names_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "settings.md").write_text("old\n")
    assert main(["--out", str(tmp_path), "--check"]) == 1
    assert "settings.md" in capsys.readouterr().err
