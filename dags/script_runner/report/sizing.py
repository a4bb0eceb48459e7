"""Right-sizing: what each script used (peak memory, CPU time) against what it asked, and a suggestion.

Each run's report adds one entry per script to a small history object in the state bucket
(``<state_root>/sizing/history.json``, written by the Airflow identity only, like ``ledger/``); the report
and ``script-runner plan`` suggest a ``memory=``/``cpu=`` directive when the last runs show the ask is far
off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from script_runner.config.units import format_bytes, format_cpu, parse_bytes, parse_cpu

if TYPE_CHECKING:
    from google.cloud.storage import Client

    from script_runner.config.settings import RunnerSettings

# A platform's rules for what a pod gets, (cpu cores, memory bytes) -> the same, raised (Autopilot's).
Bend = Callable[[Decimal, Decimal], tuple[Decimal, Decimal]]

log = logging.getLogger(__name__)
MI = 1024**2
# Runs kept per script, and how many of the latest a suggestion looks at.
KEEP_RUNS = 10
WINDOW = 5
# Headroom above the highest peak (memory) or the busiest run's average cores (cpu).
HEADROOM = Decimal("1.5")
# Memory steps: powers of two from 64Mi. CPU steps below; anything above the last is whole cores.
MEMORY_FLOOR = 64 * MI
CPU_STEPS = [Decimal(s) for s in ("0.1", "0.25", "0.5", "1", "2", "4", "8", "16")]
# "Far off": an ask at least this many times the suggestion (memory, cpu), or CPU use above this share of it.
MEMORY_OVER = Decimal(2)
CPU_OVER = Decimal(4)
TIGHT = Decimal("0.9")


@dataclass(frozen=True)
class Suggestion:
    """A sizing suggestion for one script: the directive to write and why."""

    directive: str  # e.g. "memory=512Mi cpu=250m"
    reason: str  # e.g. "asked memory=2Gi, peak 310Mi over the last 5 runs → memory=512Mi"


def run_entry(row: dict[str, Any], tries: list[dict[str, Any]], run_id: str) -> dict[str, Any] | None:
    """One run of one script for the history: its ask and the most it used (None without figures).

    :param row: the script's report row (``memory``/``cpu`` asked, ``status``).
    :param tries: the script's attempts in the run (ledger records with ``mem_peak_bytes``/``cpu_secs``);
        only those whose script ran to its own exit count (:func:`ran_script`).
    :param run_id: the run.
    """
    measured = [t for t in tries if ran_script(t) and ("cpu_secs" in t or "mem_peak_bytes" in t)]
    oom = any(t.get("status") == "oom_killed" for t in tries)
    if not measured and not oom:
        return None
    peaks = [int(t["mem_peak_bytes"]) for t in measured if "mem_peak_bytes" in t]
    cores = [c for t in measured if (c := cores_used(t)) is not None]
    entry: dict[str, Any] = {
        "run_id": run_id,
        "ended": row.get("ended", ""),
        "memory": row.get("memory", ""),
        "cpu": row.get("cpu", ""),
        "status": row.get("status", ""),
        "oom": oom,
    }
    if peaks:
        entry["mem_peak_bytes"] = max(peaks)
    if cores:
        entry["avg_cores"] = round(max(cores), 3)
        entry["cpu_secs"] = round(sum(float(t["cpu_secs"]) for t in measured if "cpu_secs" in t), 3)
    return entry


# End reasons of attempts whose script ran to its own exit (runner_image/entrypoint). The others never ran
# it (done-marker skips, auth, fetch, preflight, secrets) or stopped it from outside (sigterm): their
# figures are the entrypoint's, not the script's.
RAN_TO_ITS_EXIT = frozenset({"ok", "script-failed"})


def ran_script(attempt: dict[str, Any]) -> bool:
    """Whether an attempt's figures are the script's: it ran to its own exit (an end line that says so).

    :param attempt: a ledger record.
    """
    return attempt.get("end_reason") in RAN_TO_ITS_EXIT


def cores_used(attempt: dict[str, Any]) -> float | None:
    """An attempt's average cores: CPU seconds over the entrypoint's own seconds (pod start excluded),
    None when either is unknown or the script did not run to its exit.

    :param attempt: a ledger record.
    """
    if not ran_script(attempt) or not isinstance(attempt.get("cpu_secs"), int | float):
        return None
    secs = attempt.get("entry_secs")
    if not isinstance(secs, int | float):
        return None
    return float(attempt["cpu_secs"]) / max(float(secs), 1.0)


def platform_bend(settings: RunnerSettings) -> Bend | None:
    """How the platform raises small asks (Composer 3 and Autopilot: at least 250m and 512Mi, ...), or None.

    A suggestion below what the pod would get anyway saves nothing: suggestions are bent the same way.

    :param settings: the runner settings.
    """
    if not (settings.composer3_rules or settings.autopilot):
        return None
    from script_runner.config.platform_rules import autopilot_bend

    def bend(cores: Decimal, amount: Decimal) -> tuple[Decimal, Decimal]:
        new_cpu, new_memory, _ = autopilot_bend(cores, amount)
        return new_cpu, new_memory

    return bend


def suggest(
    entries: list[dict[str, Any]], *, memory: str, cpu: str, bend: Bend | None = None
) -> Suggestion | None:
    """A directive when the last runs show the ask is far off (None when it fits or nothing is known).

    Memory: the highest peak of the last ``WINDOW`` runs times 1.5, rounded up to a power of two (at least
    64Mi), suggested when the ask is twice that or more; a run ended OOMKilled suggests twice the ask.
    CPU: the busiest run's average cores times 1.5 rounded up to a step (100m, 250m, 500m, 1, 2, …),
    suggested when the ask is four times that or more, or above 90 % used.

    :param entries: the script's history, oldest first.
    :param memory: the memory asked now (a Kubernetes quantity).
    :param cpu: the cpu asked now.
    :param bend: the platform's rules (``platform_bend``): targets are raised as the pod's asks would be.
    """
    recent = entries[-WINDOW:]
    if not recent:
        return None
    raise_cpu, raise_mem = _raisers(bend)
    runs = f"over the last {len(recent)} run{'s' if len(recent) > 1 else ''}"
    directives, reasons = [], []
    asked_mem = parse_bytes(memory)
    peaks = [Decimal(e["mem_peak_bytes"]) for e in recent if "mem_peak_bytes" in e]
    if any(e.get("oom") for e in recent):
        target = raise_mem(_memory_step(asked_mem * 2))
        directives.append(f"memory={format_bytes(target)}")
        reasons.append(f"asked memory={memory}, OOMKilled {runs} → memory={format_bytes(target)}")
    elif peaks:
        peak = max(peaks)
        target = raise_mem(_memory_step(peak * HEADROOM))
        # Only downwards: the peak counts page cache, which the kernel reclaims before an OOM kill, so a peak
        # near the ask is no sign of a shortage (an OOMKilled run is, above).
        if asked_mem >= target * MEMORY_OVER:
            directives.append(f"memory={format_bytes(target)}")
            reasons.append(
                f"asked memory={memory}, peak {_mebis(peak)} {runs} → memory={format_bytes(target)}"
            )
    asked_cpu = parse_cpu(cpu)
    cores = [Decimal(str(e["avg_cores"])) for e in recent if "avg_cores" in e]
    if cores:
        busiest = max(cores)
        target_cpu = raise_cpu(_cpu_step(busiest * HEADROOM))
        if asked_cpu >= target_cpu * CPU_OVER or busiest > asked_cpu * TIGHT:
            directives.append(f"cpu={format_cpu(target_cpu)}")
            used = format_cpu(busiest)
            reasons.append(f"asked cpu={cpu}, used {used} on average {runs} → cpu={format_cpu(target_cpu)}")
    if not directives:
        return None
    return Suggestion(directive=" ".join(directives), reason="; ".join(reasons))


def _raisers(bend: Bend | None) -> tuple[Callable[[Decimal], Decimal], Callable[[Decimal], Decimal]]:
    """Raise a cpu or a memory target alone to the platform's minimums (identity without a platform)."""
    if bend is None:
        return (lambda cores: cores), (lambda amount: amount)
    smallest = Decimal("0.001")
    return (lambda cores: bend(cores, Decimal(MI))[0]), (lambda amount: bend(smallest, amount)[1])


def _memory_step(amount: Decimal) -> Decimal:
    step = Decimal(MEMORY_FLOOR)
    while step < amount:
        step *= 2
    return step


def _cpu_step(cores: Decimal) -> Decimal:
    for step in CPU_STEPS:
        if cores <= step:
            return step
    return cores.to_integral_value(rounding="ROUND_CEILING")


def _mebis(amount: Decimal) -> str:
    return f"{int((amount / MI).to_integral_value(rounding='ROUND_CEILING'))}Mi"


def mebibytes(amount: int | None) -> str:
    """Bytes as ``310Mi`` (rounded up), or an empty string when unknown.

    :param amount: bytes, or None.
    """
    return "" if amount is None else _mebis(Decimal(amount))


class SizingHistory:
    """The per-script usage history at ``gs://<bucket>/<root>/sizing/history.json`` (Airflow writes it)."""

    def __init__(self, client: Client, *, bucket: str, root: str) -> None:
        self.client = client
        self.bucket = bucket
        self.name = f"{root.strip('/')}/sizing/history.json"

    def read(self) -> dict[str, list[dict[str, Any]]]:
        """Every script's entries, oldest first (empty when there is no history yet)."""
        return self._read()[0]

    @retry(
        retry=retry_if_exception(lambda exc: _is_precondition_failed(exc)),
        stop=stop_after_attempt(8),
        wait=wait_random_exponential(multiplier=0.05, max=1),
        reraise=True,
    )
    def add(self, entries: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """Add one run's entries (by script path), keep the last ``KEEP_RUNS`` per script; return the whole.

        A run already recorded (the report task retried) replaces its earlier entry. Concurrent reports
        are serialised by a generation precondition.

        :param entries: this run's entry per script path.
        """
        history, generation = self._read()
        for path, entry in entries.items():
            kept = [e for e in history.get(path, []) if e.get("run_id") != entry.get("run_id")]
            history[path] = [*kept, entry][-KEEP_RUNS:]
        if entries:
            self.client.bucket(self.bucket).blob(self.name).upload_from_string(
                json.dumps({"version": 1, "scripts": history}),
                content_type="application/json",
                if_generation_match=generation,
            )
        return history

    def _read(self) -> tuple[dict[str, list[dict[str, Any]]], int]:
        from google.api_core.exceptions import NotFound

        blob = self.client.bucket(self.bucket).blob(self.name)
        try:
            data = json.loads(blob.download_as_bytes())
        except NotFound:
            return {}, 0
        scripts = data.get("scripts") if isinstance(data, dict) else None
        return (scripts if isinstance(scripts, dict) else {}), int(blob.generation or 0)


def _is_precondition_failed(exc: BaseException) -> bool:
    """A concurrent report changed the history first (imported here: not at the DAG file's parse)."""
    from google.api_core.exceptions import PreconditionFailed

    return isinstance(exc, PreconditionFailed)


def apply_sizing(
    report: dict[str, Any],
    attempts: dict[str, list[dict[str, Any]]],
    history: SizingHistory | None,
    *,
    bend: Bend | None = None,
) -> None:
    """Add this run to the usage history, then put a ``suggestion`` on each report row that needs one.

    Without a history store (or when it cannot be read or written) suggestions come from this run alone.

    :param report: the run report (its ``scripts`` rows get ``suggestion``).
    :param attempts: the ledger: attempts per script path.
    :param history: the history object in the state bucket, or None.
    :param bend: the platform's rules for small asks (``platform_bend``).
    """
    entries = {
        row["path"]: entry
        for row in report["scripts"]
        if (entry := run_entry(row, attempts.get(row["path"], []), report["run_id"])) is not None
    }
    known: dict[str, list[dict[str, Any]]] = {path: [entry] for path, entry in entries.items()}
    if history is not None:
        try:
            known = history.add(entries)
        except Exception:
            log.warning("could not update the sizing history; suggestions from this run only", exc_info=True)
    for row in report["scripts"]:
        if not row.get("memory") or not row.get("cpu"):
            continue
        hint = suggest(known.get(row["path"], []), memory=row["memory"], cpu=row["cpu"], bend=bend)
        if hint is not None:
            row["suggestion"] = {"directive": hint.directive, "reason": hint.reason}
