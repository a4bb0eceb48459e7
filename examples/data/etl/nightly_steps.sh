#!/usr/bin/env bash
# runner: cpu=250m memory=128Mi timeout=20m retries=2
# Serial steps with checkpoints, cleanup and notification: a retry resumes at the first unfinished step.
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"

on_exit rm -rf "${RUNNER_WORKDIR}/extract"
on_exit notify info "nightly_steps finished" "try=${RUNNER_TRY_NUMBER}"

step extract -- bash -c 'mkdir -p "$RUNNER_WORKDIR/extract" && seq 1 1000 > "$RUNNER_WORKDIR/extract/rows.txt"'
step transform -- bash -c 'test -f "$RUNNER_WORKDIR/extract/rows.txt" || seq 1 1000 > /dev/null; echo transformed'
step publish -- retry --attempts 3 --base 1 -- echo "published rows for ${RUNNER_LOGICAL_DATE}"
