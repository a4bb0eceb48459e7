#!/usr/bin/env bash
# runner: service_account=etl-b retries=0
# runner: secret=projects/test-project/secrets/team-a-password:STOLEN
# Runs as etl-b and asks for etl-a's secret: the preflight refuses it before this line runs.
set -Eeuxo pipefail
echo "E2E-ID-B-NEVER-RUNS"
