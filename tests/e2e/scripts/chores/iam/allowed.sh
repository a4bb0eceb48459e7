#!/usr/bin/env bash
# runner: service_account=writer retries=0
# runner: needs=gs://composer-bucket-out/reports/:write
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"
printf 'report for %s\n' "${RUNNER_LOGICAL_DATE}" >"${RUNNER_WORKDIR}/report.txt"
runner_gcs_put composer-bucket-out "reports/e2e-iam/${RUNNER_RUN_ID//[:+]/_}.txt" "${RUNNER_WORKDIR}/report.txt" >/dev/null
echo "E2E-IAM-ALLOWED wrote as ${RUNNER_IDENTITY}"
gcloud storage ls "gs://composer-bucket-out/reports/e2e-iam/" | sed 's/^/E2E-IAM-LS /'
