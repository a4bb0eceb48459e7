#!/usr/bin/env bash
# runner: cpu=250m memory=256Mi timeout=10m retries=2
# runner: env=TARGET_BUCKET=composer-bucket-out
# Copy this run's input between buckets with gcloud storage, retried with backoff on transient errors.
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"

src="gs://${RUNNER_STATE_BUCKET}/data/copy_between_buckets.sh"
dst="gs://${TARGET_BUCKET}/copies/${RUNNER_LOGICAL_DATE}/copy_between_buckets.sh"
retry --attempts 4 --base 1 -- gcloud storage cp --quiet "${src}" "${dst}"
gcloud storage ls "gs://${TARGET_BUCKET}/copies/${RUNNER_LOGICAL_DATE}/"
