#!/usr/bin/env bash
# runner: service_account=etl-c retries=0
# etl-c is in the allowlist, but the environment's identity may not impersonate it (no token creator role).
set -Eeuo pipefail
echo "E2E-ID-C-NEVER-RUNS"
