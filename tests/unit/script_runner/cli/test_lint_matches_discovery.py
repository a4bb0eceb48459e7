"""``lint`` reports exactly what discovery rejects: both run on the same folder and are compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from script_runner.cli.lint import lint_paths
from script_runner.config.settings_loader import load_settings
from script_runner.discover.discovery import discover

HEADERS = {
    "ok.sh": "",
    "bad_cpu.sh": "# runner: cpu=lots",
    "unknown_after.sh": "# runner: after=nowhere.sh",
    # Two cycles that share b.sh: a -> b -> a and b -> c -> b (one tangle).
    "cycles/a.sh": "# runner: after=cycles/b.sh",
    "cycles/b.sh": "# runner: after=cycles/a.sh,cycles/c.sh",
    "cycles/c.sh": "# runner: after=cycles/b.sh",
    "self.sh": "# runner: after=self.sh",
    "feb31.sh": "# runner: schedule=0 6 31 2 *",
    "not_cron.sh": "# runner: schedule=every day",
    "after_ok.sh": "# runner: after=ok.sh",
    "unitless.sh": "# runner: memory=512",
    # A long comment, then a directive line cut by the 8 KiB header read after "# runner: memor".
    "straddle.sh": "# " + "x" * 8162 + "\n# runner: memory=1Gi cpu=1",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, header in HEADERS.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!/bin/bash\n{header}\necho hi\n")
    return tmp_path


def test_lint_fails_exactly_the_scripts_discovery_rejects(folder: Path) -> None:
    settings = load_settings(
        environ={
            "GCS_BUCKET": "b",
            "SCRIPT_RUNNER_PRESET": "local",
            "SCRIPT_RUNNER_SOURCE": f"file://{folder}/",
        },
        local_folder=True,
    )
    found = discover(settings)
    rejected = {r.path: r.reason for r in found.rejected}
    linted = {
        r.path.relative_to(folder).as_posix(): r.problems
        for r in lint_paths([folder], settings, shellcheck=None)
    }
    failing = {path for path, problems in linted.items() if problems}
    assert failing == set(rejected)
    assert failing == {
        "bad_cpu.sh",
        "unknown_after.sh",
        "cycles/a.sh",
        "cycles/b.sh",
        "cycles/c.sh",
        "self.sh",
        "feb31.sh",
        "not_cron.sh",
        "unitless.sh",
        "straddle.sh",
    }
    # Dependency problems come with discovery's own words.
    for path in ("unknown_after.sh", "cycles/b.sh", "self.sh"):
        assert [p.message for p in linted[path]] == [rejected[path]]
    assert sorted(s["path"] for s in found.specs) == ["after_ok.sh", "ok.sh"]


def test_lint_of_single_files_resolves_after_against_the_files_beside_them(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "local"})
    monkeypatch.chdir(folder)
    results = lint_paths([Path("after_ok.sh"), Path("unknown_after.sh")], settings, shellcheck=None)
    by_name = {r.path.name: r.problems for r in results}
    assert by_name["after_ok.sh"] == []
    assert "after=nowhere.sh: no script of this source matches it" in by_name["unknown_after.sh"][0].message
