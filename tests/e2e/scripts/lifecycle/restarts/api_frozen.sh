#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=10m retries=0
# Runs while the Kubernetes API answers nothing for 30 s: the task waits it out without spending a retry.
set -Eeuo pipefail
echo "E2E-FROZEN begin pid=$$"
sleep 20
echo "E2E-FROZEN end pid=$$"
