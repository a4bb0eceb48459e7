#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi retries=1 timeout=2m
# Always fails with exit 3: retried once, then the task fails and the report shows exit 3.
set -Eeuo pipefail
echo "attempt ${RUNNER_TRY_NUMBER:-?}: the upstream file is missing" >&2
exit 3
