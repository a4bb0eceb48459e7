#!/usr/bin/env bash
# runner: service_account=reader retries=0
# No preflight: the write itself is refused by IAM (per-identity isolation), and the script sees it.
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"
echo data >"${RUNNER_WORKDIR}/x.txt"
code=0
runner_gcs_put composer-bucket-out "reports/e2e-iam/should-not-exist.txt" "${RUNNER_WORKDIR}/x.txt" >/dev/null || code=$?
echo "E2E-IAM-ISOLATED put exit=${code}"
[[ ${code} -ne 0 ]]
