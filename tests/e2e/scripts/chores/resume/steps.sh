#!/usr/bin/env bash
# runner: retries=1
# Three checkpointed steps. On try 1 the script gets SIGTERM in the middle of "load" (as when its pod is
# stopped); try 2 must skip "extract" and resume at "load".
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"

step extract -- echo "E2E-STEP extract ran try=${RUNNER_TRY_NUMBER}"
# shellcheck disable=SC2016  # expanded by the inner bash, on purpose
step load -- bash -c '
  echo "E2E-STEP load started try=${RUNNER_TRY_NUMBER}"
  if [[ "${RUNNER_TRY_NUMBER}" == 1 ]]; then kill -TERM "${PPID}"; exit 0; fi
  echo "E2E-STEP load finished try=${RUNNER_TRY_NUMBER}"'
step publish -- echo "E2E-STEP publish ran try=${RUNNER_TRY_NUMBER}"
