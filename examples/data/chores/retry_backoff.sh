#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi retries=0
# Chore 4 (retry with exponential backoff): `retry` re-runs a flaky command with full-jitter backoff,
# here succeeding on its third call; only the listed exit codes are retried.
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"

flaky_download() {
  local n
  n=$(( $(cat "${RUNNER_WORKDIR}/calls" 2>/dev/null || echo 0) + 1 ))
  echo "${n}" >"${RUNNER_WORKDIR}/calls"
  [[ ${n} -ge 3 ]] || { echo "upstream busy (call ${n})" >&2; return 75; }
  echo "downloaded on call ${n}"
}

retry --attempts 5 --base 0.5 --max 4 --on 75 -- flaky_download
