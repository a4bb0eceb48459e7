"""Issue 15's goal 1 on the local stack: ours vs the bare KPO DAG (100 trivial scripts), process kubelet,
with and without the worker preload, sync and deferrable; each variant one stack session, alternating.

``python -m bench.compare15 [--quick] [--repeats N] [--variants preload-sync,nopreload-deferrable,...]``
prints one JSON object per run (each with the 1-minute load average before and after it).
"""

from __future__ import annotations

import argparse
import sys

from bench.e2e import compare

VARIANTS = {
    "preload-sync": {"preload": True, "deferrable": False},
    "preload-deferrable": {"preload": True, "deferrable": True},
    "nopreload-sync": {"preload": False, "deferrable": False},
    "nopreload-deferrable": {"preload": False, "deferrable": True},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare15")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, in this order")
    args = parser.parse_args(argv)
    names = args.variants.split(",")[:1] if args.quick else args.variants.split(",")
    for name in names:
        compare(10 if args.quick else 100, args.repeats, "process", naive=False, **VARIANTS[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
