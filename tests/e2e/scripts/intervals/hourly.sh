#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi retries=0
# No schedule= of its own: due in every run of the hourly DAG, each its own unit of idempotency.
set -Eeuo pipefail
# shellcheck source=runner_image/lib/runner.sh
source "${RUNNER_LIB}"
step work -- echo "E2E-INTERVAL hourly ran interval=${RUNNER_INTERVAL} date=${RUNNER_LOGICAL_DATE}"
