#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=10m retries=2
# The LocalExecutor worker running its task is SIGKILLed while it runs: once the scheduler sees no heartbeat
# (the stack's 60 s), the next try must reattach to this pod, not start another.
set -Eeuo pipefail
echo "E2E-GONE begin pid=$$"
sleep 100
echo "E2E-GONE end pid=$$"
