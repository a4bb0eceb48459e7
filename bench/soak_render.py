"""Render the soak's results (``bench/results/soak.json``) as ``bench/SOAK.md``.

``python -m bench.soak_render`` re-renders from the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = [
    ("run", "run"),
    ("mode", "mode"),
    ("state", "run state"),
    ("wall_s", "wall s"),
    ("pods_created", "pods created"),
    ("cancelled_by_the_soak", "cancelled"),
    ("orphan_pods", "**orphan pods**"),
    ("orphan_processes", "**orphan processes**"),
    ("ran_twice_by_ledger", "**ran twice (ledger)**"),
    ("ran_twice_by_marker", "**ran twice (marker)**"),
    ("report_complete", "**report complete**"),
    ("tries_lost_to_scheduler_races", "Airflow tries lost to races"),
    ("retries_spent_beyond_the_fault", "**retries spent beyond the fault**"),
    ("lost_tries_that_cost_a_retry", "**lost tries that cost a retry**"),
    ("unexpected_ledgers", "other unexpected attempts"),
]


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, bool):
        return "yes" if value else "**NO**"
    return str(value)


def render(result: dict[str, Any]) -> str:
    """The page.

    :param result: what ``bench.soak`` wrote.
    """
    machine = ", ".join(f"{k} {v}" for k, v in result["machine"].items())
    runs = result["runs"]
    first = runs[0] if runs else {}
    lines = [
        "# Soak results (issue 12)",
        "",
        "Recorded by `make soak` (`python -m bench.soak`); raw numbers in `bench/results/soak.json`;",
        "re-render with `python -m bench.soak_render`. Goal: every bold column 0 (and the report complete).",
        "",
        f"Machine: {machine}. Load average at the end: {', '.join(f'{x:.1f}' for x in result['load'])}.",
        f"Note: {result['note']}. Whole soak (stack start and stop included): {result['total_s']} s.",
        "",
        f"Each run: {first.get('scripts', '?')} scripts ({first.get('kinds', {})}): `oom` scripts are",
        "OOM-killed once (`oom_retry=true`, retried with doubled memory), `evict` ones evicted once",
        "(rescheduled without spending a retry), `cancel` ones marked failed through the REST API while",
        "their pod runs; about 5 % of pod creations answer 500 and as many pod reads 503. Process kubelet,",
        "providers preloaded.",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    for row in runs:
        lines.append("| " + " | ".join(_cell(row.get(key)) for key, _ in COLUMNS) + " |")
    lines += [
        "",
        "Orphans are counted 30 s after the run ended (a deleted pod's grace period): pods in the double,",
        'containers it still runs, and host processes in a pod\'s work dir. "Ran twice": more than one',
        "`success` in the script's attempt ledger, or more than one end-of-run marker (a `notify` event",
        "each script writes as its last line) in the run. Lost tries: the scheduler log's \"finished",
        "with state success, but the task instance's state attribute\" for the run (apache/airflow#71172,",
        "#67287). A script spent a retry beyond its fault when its ledger counts more failures than the",
        "fault explains (evictions and cancels count none; ending failed counts one); the operator",
        "numbers attempts by those counted failures, not by Airflow's try number, so a lost try",
        "costs a retry only then. A lost try may take an attempt's record with it (e.g. an eviction never",
        "recorded, then one success): listed below as an unexpected ledger, with no retry spent.",
        "",
    ]
    odd = [(row["run"], u) for row in runs for u in row.get("unexpected_ledgers", [])]
    if odd:
        lines += ["Unexpected attempt ledgers (script (kind): statuses):", ""]
        lines += [f"- run {run}: {text}" for run, text in odd]
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    result = json.loads((ROOT / "bench" / "results" / "soak.json").read_text())
    (ROOT / "bench" / "SOAK.md").write_text(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
