#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=2m retries=0
set -Eeuo pipefail
echo "E2E-OK-MARKER script=${RUNNER_SCRIPT_PATH} generation=${RUNNER_SCRIPT_GENERATION}"
