#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=10m retries=0
# Runs while the triggerer restarts: the new triggerer watches the same pod; no second pod, one run.
set -Eeuo pipefail
echo "E2E-SLOW begin pid=$$"
sleep 25
echo "E2E-SLOW end pid=$$"
