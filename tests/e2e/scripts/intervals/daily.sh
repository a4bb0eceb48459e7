#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi retries=0 schedule=0 2 * * *
# Due only in the run whose interval holds 02:00 (README's mix of hourly and daily scripts).
set -Eeuo pipefail
echo "E2E-INTERVAL daily ran interval=${RUNNER_INTERVAL}"
