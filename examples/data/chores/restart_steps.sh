#!/usr/bin/env bash
# runner: cpu=250m memory=128Mi timeout=20m retries=2
# Chores 2+3 (state across restarts; serial steps with cleanup and notification): each step is
# checkpointed in GCS, so a retry resumes at the first unfinished step; cleanup runs however it ends.
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"

extract_rows() {
  mkdir -p "${RUNNER_WORKDIR}/extract"
  seq 1 1000 >"${RUNNER_WORKDIR}/extract/rows.txt"
}

transform_rows() {
  # A retry may start on a fresh pod: rebuild what a skipped step would have left behind.
  [[ -f "${RUNNER_WORKDIR}/extract/rows.txt" ]] || extract_rows
  awk '{ s += $1 } END { print "sum=" s }' "${RUNNER_WORKDIR}/extract/rows.txt"
}

on_exit rm -rf "${RUNNER_WORKDIR}/extract"
on_exit notify info "restart_steps finished" "try=${RUNNER_TRY_NUMBER}"

step extract -- extract_rows
step transform -- transform_rows
step publish -- echo "published rows for ${RUNNER_LOGICAL_DATE}"
