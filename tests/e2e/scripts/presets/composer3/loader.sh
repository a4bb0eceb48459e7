#!/usr/bin/env bash
# runner: service_account=reader retries=0
set -Eeuo pipefail
echo "E2E-PRESET-NEVER-RUNS"
