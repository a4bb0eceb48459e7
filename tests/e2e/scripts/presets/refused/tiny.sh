#!/usr/bin/env bash
# runner: cpu=100m memory=256Mi retries=0
set -Eeuo pipefail
echo "E2E-PRESET-NEVER-RUNS"
