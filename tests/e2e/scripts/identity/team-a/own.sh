#!/usr/bin/env bash
# runner: service_account=etl-a retries=0
# runner: secret=projects/test-project/secrets/team-a-password:PW
# team-a's folder is bound to etl-a and team-a's secrets: it runs as etl-a and gets its secret.
set -Eeuo pipefail
[[ -n "${PW:-}" ]] && echo "E2E-ID-TEAM-A-SECRET-OK"
echo "E2E-ID-TEAM-A-AS=${CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT}"
