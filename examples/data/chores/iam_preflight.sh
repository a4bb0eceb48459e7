#!/usr/bin/env bash
# runner: cpu=250m memory=256Mi service_account=writer
# runner: needs=gs://composer-bucket-out/exports/:write
# Chore 5 (IAM): the pod runs as the `writer` service account (Workload Identity on GKE; the local IAM front
# here). `needs=` makes the runner check the permission before the script starts; `require` does the same
# from inside a script. A missing permission fails at once, naming the identity, resource and fix.
# (256Mi: gcloud is a Python program; at 64Mi it is OOMKilled, as the real memory limit shows.)
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"

require "gs://${RUNNER_STATE_BUCKET}/data/:read"
printf 'export for %s\n' "${RUNNER_LOGICAL_DATE}" >"${RUNNER_WORKDIR}/export.txt"
gcloud storage cp --quiet "${RUNNER_WORKDIR}/export.txt" "gs://composer-bucket-out/exports/${RUNNER_LOGICAL_DATE}.txt"
echo "exported as ${RUNNER_IDENTITY:-the pod identity}"
