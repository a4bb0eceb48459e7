"""The first hour with the CLI (issue 27): no "ok" for a broken script, every problem once, with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from script_runner.cli.main import main

BROKEN = {
    "late.sh": "#!/usr/bin/env bash\nset -e\n# runner: memory=2Gi timeout=2h\necho hi\n",
    "spaced_env.sh": '#!/usr/bin/env bash\n# runner: env=GREETING=hi there\necho "$GREETING"\n',
    "spaced_timeout.sh": "#!/usr/bin/env bash\n# runner: timeout=1 hour\necho hi\n",
    "several.sh": "#!/usr/bin/env bash\n# runner: cpu=lots\n# runner: memory=huge retries=x\necho hi\n",
}
FIXES = {
    "late.sh": "move the line into the header, before the first command",
    "spaced_env.sh": 'quote values with spaces: env="GREETING=hi there"',
    "spaced_timeout.sh": "write timeout=1h",
}


def _scripts(folder: Path, scripts: dict[str, str]) -> Path:
    for name, text in scripts.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_cli_lint_says_no_ok_for_a_broken_script(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _scripts(tmp_path, {name: BROKEN[name]})
    assert main(["lint", "--no-shellcheck", "--preset", "local", str(tmp_path / name)]) == 1
    out = capsys.readouterr().out
    assert ": ok " not in out
    assert FIXES.get(name, "fix: ") in out


def test_cli_plan_reports_every_problem_of_each_script_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _scripts(tmp_path, BROKEN).as_uri() + "/"
    assert main(["plan", "--preset", "local", "--source", source]) == 1
    captured = capsys.readouterr()
    out = captured.out + captured.err
    for name, fix in FIXES.items():
        assert out.count(f"REJECTED {name}") == 1, out
        assert fix in out
    assert out.count("several.sh line 2: cpu:") == 1
    assert out.count("several.sh line 3: memory:") == 1
    assert out.count("several.sh line 3: retries=") == 1
    assert "rejected" not in captured.err  # discovery's log lines are not printed a second time


def test_cli_plan_says_a_missing_image_once_and_still_plans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCRIPT_RUNNER_IMAGE", raising=False)
    source = _scripts(tmp_path, {"a.sh": "#!/bin/bash\necho a\n", "b.sh": "#!/bin/bash\necho b\n"}).as_uri()
    assert main(["--preset", "composer3", "plan", "--source", source + "/"]) == 2
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("no runner image is configured") == 1
    assert "SCRIPT_RUNNER_IMAGE" in captured.err
    assert "2 to launch" in captured.out


def test_cli_plan_and_lint_warn_that_memory_1G_is_decimal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _scripts(tmp_path, {"m.sh": "#!/bin/bash\n# runner: memory=1G\necho m\n"})
    assert main(["plan", "--preset", "local", "--source", tmp_path.as_uri() + "/"]) == 0
    out = capsys.readouterr().out
    assert "warning: line 2: memory=1G means 10^9 bytes" in out
    assert "write memory=1Gi" in out
    assert main(["lint", "--no-shellcheck", "--preset", "local", str(tmp_path / "m.sh")]) == 1
    assert "m.sh:2: warning: memory=1G means 10^9 bytes" in capsys.readouterr().out
    assert main(["lint", "--no-shellcheck", "--severity", "error", "--preset", "local", str(tmp_path)]) == 0


def test_cli_plan_accepts_preset_and_settings_after_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _scripts(tmp_path, {"a.sh": "#!/bin/bash\necho a\n"})
    source = tmp_path.as_uri() + "/"
    argv = ["plan", "--source", source, "--preset", "composer3", "--settings", '{"image": "img:1"}']
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "(preset composer3)" in out
    assert "img:1" in out


def test_cli_plan_without_credentials_names_the_gcloud_login(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No credentials anywhere: no key file, no gcloud config, no metadata server.
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "CLOUDSDK_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    argv = ["plan", "--preset", "composer3", "--settings", '{"image": "i"}', "--source", "gs://b/data/"]
    assert main(argv) == 2
    assert "gcloud auth application-default login" in capsys.readouterr().err
