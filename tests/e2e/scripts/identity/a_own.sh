#!/usr/bin/env bash
# runner: service_account=etl-a retries=0
# runner: secret=team-a-password:TEAM_PASSWORD secret=projects/test-project/secrets/team-a-password:file
# Runs as etl-a (impersonated): reads team-a/, is denied team-b/, gets its own secret; traced throughout.
set -Eeuxo pipefail
# shellcheck source=runner_image/lib/runner.sh
source "${RUNNER_LIB}"
runner_gcs_get composer-bucket team-a/input.txt "${TMPDIR:-/tmp}/a.txt"
echo "E2E-ID-A-READ=$(cat "${TMPDIR:-/tmp}/a.txt")"
code=0
runner_gcs_get composer-bucket team-b/input.txt "${TMPDIR:-/tmp}/b.txt" || code=$?
echo "E2E-ID-A-READ-B-EXIT=${code}"
# The value is compared by checksum (this script is traced): a tool reading the variable shows nothing.
want=a687e3948deec81aa499026c18fcf085
[[ "$(printenv TEAM_PASSWORD | tr -d '\n' | md5sum | cut -d' ' -f1)" == "${want}" ]] && echo "E2E-ID-SECRET-ENV-OK"
[[ "$(md5sum <"${RUNNER_SECRETS_DIR}/team-a-password" | cut -d' ' -f1)" == "${want}" ]] && echo "E2E-ID-SECRET-FILE-OK"
echo "E2E-ID-IMPERSONATING=${CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT}"
