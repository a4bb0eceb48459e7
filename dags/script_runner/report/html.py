"""The run report as one self-contained HTML page: inline CSS and SVG, no script, no external asset.

It shows a timeline (one bar per script and attempt, coloured by outcome), the scripts with what they asked
and used (CPU seconds, peak memory) and any sizing suggestion, and the rejected scripts with their fixes.
Script names, reasons and messages are user input: every value is escaped.
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape
from typing import Any

from script_runner.config.units import parse_bytes
from script_runner.report.build import cpu_cell, memory_cell

# Outcome colours (bars and status chips); anything else is drawn as a failure.
COLOURS = {
    "success": "#2e7d32",
    "skipped": "#9e9e9e",
    "failed": "#c62828",
    "oom_killed": "#6a1b9a",
    "timeout": "#ef6c00",
    "cancelled": "#455a64",
    "evicted": "#f9a825",
    "preempted": "#f9a825",
    "rejected": "#ad1457",
}
OTHER = "#d84315"
WIDTH = 900  # the timeline's drawing width in px
LABEL = 280  # px for the script labels left of the bars
ROW = 22  # px per bar row

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#212121}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#616161}.chip{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;margin-right:4px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e0e0e0;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#fafafa}td.num{text-align:right}
.gauge{display:inline-block;width:80px;height:8px;background:#eeeeee;border-radius:4px;vertical-align:middle}
.gauge span{display:block;height:8px;border-radius:4px;background:#1565c0}
code{background:#f5f5f5;padding:0 3px}.empty{color:#757575}svg text{font:12px system-ui,sans-serif}
"""


def to_html(report: dict[str, Any]) -> str:
    """The report as a standalone HTML page.

    :param report: the run report (``build_report``'s result, with sizing suggestions when known).
    """
    title = f"Script run report: {report.get('dag_id', '')} / {report.get('run_id', '')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Source <code>{_e(report.get("source", ""))}</code> · generated '
        f"{_e(report.get('generated_at', ''))}</p>",
        _summary(report.get("summary", {})),
        "<h2>Timeline</h2>",
        _timeline(report.get("scripts", [])),
        "<h2>Scripts</h2>",
        _scripts(report.get("scripts", [])),
        "<h2>Rejected scripts</h2>",
        _rejected(report.get("rejected", [])),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _colour(status: Any) -> str:
    return COLOURS.get(str(status), OTHER)


def _status_class(status: Any) -> str:
    return "status-" + re.sub(r"[^a-z0-9_]", "", str(status).lower())


def _chip(status: Any, text: Any = None) -> str:
    shown = _e(status if text is None else text)
    return f'<span class="chip" style="background:{_colour(status)}">{shown}</span>'


def _summary(summary: dict[str, Any]) -> str:
    chips = [_chip(key, f"{key} {value}") for key, value in summary.items() if key != "total"]
    return f"<p>{summary.get('total', 0)} script(s): {' '.join(chips)}</p>"


def _time(stamp: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(stamp))
    except ValueError:
        return None


def _timeline(rows: list[dict[str, Any]]) -> str:
    """An SVG Gantt chart: one row per (script, attempt) with its start and end known."""
    bars: list[tuple[str, dict[str, Any], datetime, datetime]] = []
    for row in rows:
        for attempt in row.get("tries", []):
            start, end = _time(attempt.get("started")), _time(attempt.get("ended"))
            if start is not None and end is not None:
                bars.append((row["path"], attempt, start, max(end, start)))
    if not bars:
        return '<p class="empty">No attempt with a start and an end was recorded.</p>'
    t0 = min(b[2] for b in bars)
    span = max((max(b[3] for b in bars) - t0).total_seconds(), 1.0)
    scale = (WIDTH - LABEL - 10) / span
    height = ROW * len(bars) + 24
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="timeline">'
    ]
    for index, (path, attempt, start, end) in enumerate(bars):
        y = index * ROW + 4
        x = LABEL + (start - t0).total_seconds() * scale
        width = max((end - start).total_seconds() * scale, 3.0)
        status = attempt.get("status")
        label = f"{path} #{attempt.get('try', '')}"
        tip = (
            f"{path} attempt {attempt.get('try', '')}: {status} (exit {attempt.get('exit_code')}), "
            f"{attempt.get('secs')} s, {start.isoformat()} → {end.isoformat()}"
        )
        out.append(
            f'<text x="{LABEL - 6}" y="{y + 13}" text-anchor="end">{_e(_short(label))}</text>'
            f'<rect class="bar {_status_class(status)}" data-script="{_e(path)}" '
            f'data-try="{_e(attempt.get("try", ""))}" data-status="{_e(status)}" x="{x:.1f}" y="{y}" '
            f'width="{width:.1f}" height="{ROW - 6}" rx="3" fill="{_colour(status)}">'
            f"<title>{_e(tip)}</title></rect>"
        )
    axis_y = ROW * len(bars) + 18
    out.append(f'<text x="{LABEL}" y="{axis_y}">{_e(t0.strftime("%H:%M:%S"))}</text>')
    out.append(f'<text x="{WIDTH - 10}" y="{axis_y}" text-anchor="end">+{span:.0f} s</text>')
    out.append("</svg>")
    seen = dict.fromkeys(str(b[1].get("status")) for b in bars)
    legend = " ".join(_chip(status) for status in seen)
    return "".join(out) + f'<p class="legend">{legend}</p>'


def _short(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _gauge(row: dict[str, Any]) -> str:
    """A bar of peak memory against the ask (full at the ask)."""
    peak = row.get("mem_peak_bytes")
    try:
        asked = float(parse_bytes(str(row.get("memory", ""))))
    except ValueError:
        return ""
    if not isinstance(peak, int) or asked <= 0:
        return ""
    share = min(peak / asked, 1.0) * 100
    inner = f'<span style="width:{share:.0f}%"></span>'
    return f' <span class="gauge" title="{share:.0f}% of the ask">{inner}</span>'


def _link(url: Any, text: str) -> str:
    href = str(url or "")
    if not href.startswith(("http://", "https://")):
        return _e(text)
    return f'<a href="{_e(href)}">{_e(text)}</a>'


def _scripts(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="empty">No script was launched.</p>'
    out = [
        "<table><thead><tr><th>script</th><th>status</th><th>attempts</th><th>secs</th><th>exit</th>"
        "<th>cpu asked / used</th><th>memory asked / peak</th><th>suggestion</th><th>reason</th>"
        "</tr></thead><tbody>"
    ]
    for row in rows:
        hint = row.get("suggestion") or {}
        suggestion = (
            f"<code>{_e('# runner: ' + str(hint.get('directive', '')))}</code><br>"
            f"{_e(hint.get('reason', ''))}"
            if hint
            else ""
        )
        out.append(
            f'<tr class="script {_status_class(row.get("status"))}">'
            f"<td>{_link(row.get('log'), row['path'])}</td>"
            f"<td>{_chip(row.get('status'))}</td><td class=num>{_e(row.get('attempts'))}</td>"
            f"<td class=num>{_e(row.get('duration_secs'))}</td>"
            f"<td class=num>{_e('' if row.get('exit_code') is None else row.get('exit_code'))}</td>"
            f"<td>{_e(cpu_cell(row))}</td><td>{_e(memory_cell(row))}{_gauge(row)}</td>"
            f"<td>{suggestion}</td><td>{_e(row.get('reason', ''))}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def _rejected(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="empty">None.</p>'
    out = ["<table><thead><tr><th>script</th><th>line</th><th>problem</th><th>fix</th></tr></thead><tbody>"]
    for row in rows:
        out.append(
            f'<tr class="rejected"><td>{_e(row.get("path"))}</td>'
            f"<td class=num>{_e(row.get('line') or '')}</td>"
            f"<td>{_e(row.get('reason', ''))}</td><td>{_e(row.get('fix', ''))}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)
