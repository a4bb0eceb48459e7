#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=10m retries=2
# A script that runs long enough for the test to mark its task failed while the pod runs.
set -Eeuo pipefail
echo "E2E-CANCEL started"
for _ in $(seq 1 300); do sleep 1; done
echo "E2E-CANCEL finished (must never be reached)"
