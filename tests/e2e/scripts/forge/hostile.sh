#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi retries=0
# A hostile script: it forges victim.sh's done-marker for this run, where the task keeps them
# (<root>/cache/done/) and where pods wrote them before (<root>/done/), so that victim.sh would report
# success without running. Both writes must be refused; it reports what happened and exits 0.
set -Eeuo pipefail
# shellcheck source=runner_image/lib/runner.sh
source "${RUNNER_LIB}"
rest="${RUNNER_SCRIPT_URI#gs://}"
bucket="${rest%%/*}"
victim="$(dirname "${rest#*/}")/victim.sh"
md5="$(runner_gcs_stat "${bucket}" "${victim}" | jq -r .md5Hash)"
hex="$(printf '%s' "${md5}" | base64 -d | od -An -tx1 | tr -d ' \n')"
forged="$(mktemp)"
printf '{"run": "%s", "try": 1, "max_tries": 99}\n' "${RUNNER_RUN_ID}" >"${forged}"
for object in "cache/done/victim.sh/${hex}/${RUNNER_INTERVAL}" "done/victim.sh/${hex}/${RUNNER_LOGICAL_DATE}"; do
  code=0
  runner_gcs_put "${RUNNER_STATE_BUCKET}" "${RUNNER_STATE_ROOT}/${object}" "${forged}" >/dev/null 2>&1 || code=$?
  echo "E2E-FORGE wrote ${object%%/victim.sh/*} exit=${code}"
done
