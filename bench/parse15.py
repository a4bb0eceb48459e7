"""Parse check: ours with its default shape (one run task since issue 26) vs the bare two-task mapped DAG,
warm, alternating in one process (the machine is shared: alternation keeps both under the same load).
Also ours with ten run tasks (``SCRIPT_RUNNER_SHARDS=10``, the default before issue 26), to show what
the shards cost.

``python -m bench.parse15 [--quick]`` prints one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dags"))

from bench.parse import FILES, warm  # noqa: E402


def main(quick: bool) -> dict[str, Any]:
    rounds, repeats = (3, 10) if quick else (15, 20)
    samples: dict[str, list[float]] = {"ours_default": [], "ours_ten_shards": [], "bare": []}
    for _ in range(rounds):
        os.environ.pop("SCRIPT_RUNNER_SHARDS", None)
        samples["ours_default"].append(warm(FILES["ours"], repeats))
        samples["bare"].append(warm(FILES["bare"], repeats))
        os.environ["SCRIPT_RUNNER_SHARDS"] = "10"
        samples["ours_ten_shards"].append(warm(FILES["ours"], repeats))
    os.environ.pop("SCRIPT_RUNNER_SHARDS", None)
    from script_runner.dag import build_dag

    row: dict[str, Any] = {"rounds": rounds, "tasks_default": len(build_dag().tasks)}
    for key, values in samples.items():
        row[f"{key}_ms_median"] = round(statistics.median(values) * 1000, 2)
        row[f"{key}_ms_min"] = round(min(values) * 1000, 2)
    row["ratio_median"] = round(row["ours_default_ms_median"] / row["bare_ms_median"], 2)
    row["ratio_min"] = round(row["ours_default_ms_min"] / row["bare_ms_min"], 2)
    return row


if __name__ == "__main__":
    print(json.dumps(main("--quick" in sys.argv)))
