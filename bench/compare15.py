"""Issue 15's goal 1 on the local stack: ours vs the bare KPO DAG (100 trivial scripts), process kubelet,
with and without the worker preload, sync and deferrable; each variant one stack session, alternating.

``python -m bench.compare15 [--quick] [--repeats N]`` prints one JSON object per run.
"""

from __future__ import annotations

import argparse
import sys

from bench.e2e import compare

VARIANTS = [
    {"preload": True, "deferrable": False},
    {"preload": True, "deferrable": True},
    {"preload": False, "deferrable": False},
    {"preload": False, "deferrable": True},
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare15")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    for variant in VARIANTS[:1] if args.quick else VARIANTS:
        compare(10 if args.quick else 100, args.repeats, "process", naive=False, **variant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
