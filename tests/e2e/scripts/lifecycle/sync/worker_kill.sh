#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=10m retries=2
# Its task process is SIGKILLed while it runs: the next try must reattach to this pod, not start another.
set -Eeuo pipefail
echo "E2E-WORKER begin pid=$$"
sleep 25
echo "E2E-WORKER end pid=$$"
