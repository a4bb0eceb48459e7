#!/usr/bin/env bash
# runner: cpu=250m memory=256Mi timeout=10m retries=2
# runner: env=TARGET_BUCKET=composer-bucket-out
# Copy this run's input between buckets with gsutil, retried with backoff on transient errors (gsutil's
# own retries are turned down so that `retry` owns the backoff), then list the copy with gcloud storage.
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"

src="gs://${RUNNER_STATE_BUCKET}/data/copy_between_buckets.sh"
dst="gs://${TARGET_BUCKET}/copies/${RUNNER_LOGICAL_DATE}/copy_between_buckets.sh"
retry --attempts 4 --base 1 -- timeout 120 gsutil -q -o Boto:num_retries=1 cp "${src}" "${dst}"
gcloud storage ls "gs://${TARGET_BUCKET}/copies/${RUNNER_LOGICAL_DATE}/"
