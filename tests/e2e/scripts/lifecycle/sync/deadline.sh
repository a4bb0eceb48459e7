#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=20s retries=0
# Runs past its own timeout (the pod's activeDeadlineSeconds): the pod is stopped, no retry.
set -Eeuo pipefail
echo "E2E-DEADLINE begin"
sleep 120
echo "E2E-DEADLINE end (must never be reached)"
