#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi
# One-time setup guarded by a marker: the second run (any date) skips it.
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"

once create-reference-data -- echo "creating reference data (runs once, ever)"
echo "daily part runs every time"
