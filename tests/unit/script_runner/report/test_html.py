from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from script_runner.report.build import build_report
from script_runner.report.html import to_html

EVIL = '<script>document.title="pwned"</script>"&\'.sh'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MI = 1024**2


def sample_report() -> dict[str, Any]:
    def attempt(status: str, start: str, end: str, code: int, **more: Any) -> dict[str, Any]:
        return {
            "status": status,
            "exit_code": code,
            "secs": 5,
            "started": f"2026-11-30T10:00:{start}+00:00",
            "ended": f"2026-11-30T10:00:{end}+00:00",
            "reason": "" if status == "success" else f"exit {code} <b>bold</b>",
            **more,
        }

    attempts = {
        "etl/load.sh": [
            attempt("failed", "00", "05", 3, cpu_secs=0.2, mem_peak_bytes=80 * MI),
            attempt(
                "success",
                "10",
                "20",
                0,
                cpu_secs=1.5,
                mem_peak_bytes=310 * MI,
                usage="cgroup",
                end_reason="ok",
                entry_secs=5,
            ),
        ],
        EVIL: [attempt("oom_killed", "02", "12", 137)],
        "hello.sh": [attempt("success", "01", "03", 0, cpu_secs=0.01, usage="rusage")],
    }
    report = build_report(
        dag_id="gcs_script_runner",
        run_id="manual__2026-11-30T10:00:00",
        source="gs://b/data/",
        shards=[
            [
                {"path": "etl/load.sh", "memory": "2Gi", "cpu": "500m"},
                {"path": EVIL, "memory": "256Mi", "cpu": "250m"},
                {"path": "hello.sh", "memory": "128Mi", "cpu": "100m"},
            ]
        ],
        rejected=[
            {"path": "bad<i>.sh", "reason": "cpu=0 <must> be more", "line": 2, "fix": 'write "cpu=500m"'}
        ],
        attempts=attempts,
        states={},
        log_url="javascript:alert(1)",
    )
    load = next(row for row in report["scripts"] if row["path"] == "etl/load.sh")
    load["suggestion"] = {
        "directive": "memory=512Mi",
        "reason": "asked memory=2Gi, peak 310Mi over the last 5 runs → memory=512Mi",
    }
    return report


def test_report_html_escapes_every_user_value() -> None:
    page = to_html(sample_report())
    assert "<script" not in page  # no script of ours, and the name's is text
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;&quot;&amp;&#x27;.sh" in page
    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "bad&lt;i&gt;.sh" in page
    assert "write &quot;cpu=500m&quot;" in page
    assert "javascript:" not in page  # a log link that is not http(s) is not a link


def test_report_html_is_self_contained() -> None:
    page = to_html(sample_report())
    assert not re.search(r"\b(src|href)\s*=|url\(|@import|<link\b", page)


def test_report_html_draws_one_bar_per_attempt_coloured_by_outcome() -> None:
    page = to_html(sample_report())
    bars = re.findall(r'<rect class="bar status-(\w+)"[^>]*fill="(#\w+)"', page)
    assert sorted(bars) == sorted(
        [("failed", "#c62828"), ("success", "#2e7d32"), ("oom_killed", "#6a1b9a"), ("success", "#2e7d32")]
    )
    assert "2Gi / 310Mi" in page
    assert "500m / 300m" in page
    assert "# runner: memory=512Mi" in page
    assert "cpu=0 &lt;must&gt; be more" in page


def test_report_html_without_attempts_says_so() -> None:
    report = build_report(
        dag_id="d", run_id="r", source="s", shards=[[{"path": "a.sh"}]], rejected=[], attempts={}, states={}
    )
    page = to_html(report)
    assert "No attempt with a start and an end was recorded." in page
    assert "<rect" not in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make sysdeps installs it)")
def test_report_html_renders_in_a_headless_browser(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(to_html(sample_report()))
    shot = tmp_path / "report.png"
    flags = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1200,900",
    ]
    subprocess.run(
        [*flags, f"--user-data-dir={tmp_path / 'profile-shot'}", f"--screenshot={shot}", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a drawn page, not a blank one
    dom = subprocess.run(
        [*flags, f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom", page.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert len(re.findall(r'<rect class="bar status-', dom)) == 4
    assert "<title>Script run report" in dom  # the browser's title: no injected script ran
    assert "pwned" not in dom.split("</title>")[0]
    assert "<script" not in dom
