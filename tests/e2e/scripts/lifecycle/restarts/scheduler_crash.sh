#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=10m retries=0
# Runs while the scheduler is killed and started again: no second pod, one run, no retry spent (retries=0).
set -Eeuo pipefail
echo "E2E-SCHED begin pid=$$"
sleep 30
echo "E2E-SCHED end pid=$$"
