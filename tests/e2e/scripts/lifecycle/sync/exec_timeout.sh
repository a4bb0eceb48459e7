#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=10m retries=0
# Runs past the task's execution_timeout (the run sets it to 60s; its own timeout is 10m).
# Its cleanup hook (on_exit) leaves a notify event: the SIGTERM of the pod's deletion reached the script.
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"
on_exit notify info "E2E-LIFECYCLE cleanup ran"
echo "E2E-LIFECYCLE started"
for _ in $(seq 1 300); do sleep 1; done
echo "E2E-LIFECYCLE finished (must never be reached)"
