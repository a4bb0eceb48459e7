#!/usr/bin/env bash
# runner: service_account=etl-a retries=0
# runner: secret=projects/test-project/secrets/team-a-password:PW
# A hostile second team names team-a's account and secret: discovery rejects it, no pod is made.
set -Eeuo pipefail
echo "E2E-ID-STOLEN=${PW:-}"
