#!/usr/bin/env bash
# runner: service_account=writer retries=0
# runner: needs=gs://composer-bucket-out/reports/:write
# The identity comes from the metadata server alone: the runner library (curl), gcloud and gsutil all use it.
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"
printf 'report for %s\n' "${RUNNER_LOGICAL_DATE}" >"${RUNNER_WORKDIR}/report.txt"
runner_gcs_put composer-bucket-out "reports/e2e-iam/${RUNNER_RUN_ID//[:+]/_}.txt" "${RUNNER_WORKDIR}/report.txt" >/dev/null
echo "E2E-IAM-ALLOWED wrote as $(gcloud auth list --filter=status:ACTIVE --format='value(account)')"
gcloud storage ls "gs://composer-bucket-out/reports/e2e-iam/" | sed 's/^/E2E-IAM-LS /'
timeout 120 gsutil -o Boto:num_retries=1 ls "gs://composer-bucket-out/reports/e2e-iam/" | sed 's/^/E2E-IAM-GSUTIL /'
