#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=2m retries=1
set -Eeuo pipefail
echo "E2E-FAIL-MARKER try=${RUNNER_TRY_NUMBER}"
exit 3
