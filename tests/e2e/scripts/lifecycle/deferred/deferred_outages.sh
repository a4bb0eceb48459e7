#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=10m retries=0
# Deferrable mode: runs through the scheduler's crash, the Kubernetes double's restart and a 30 s API outage.
set -Eeuo pipefail
echo "E2E-OUTAGES begin pid=$$"
sleep 45
echo "E2E-OUTAGES end pid=$$"
