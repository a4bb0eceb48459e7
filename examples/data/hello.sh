#!/usr/bin/env bash
# Smallest script: no directives, the runner's defaults apply (cpu, memory, timeout, retries).
set -Eeuo pipefail
echo "hello from $(hostname) as uid $(id -u), script ${RUNNER_SCRIPT_PATH:-?} try ${RUNNER_TRY_NUMBER:-?}"
