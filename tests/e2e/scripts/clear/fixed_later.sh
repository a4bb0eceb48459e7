#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi retries=0
# Fails for good on its first try (no retries), as a script missing a permission would; the "fix" is
# the next Airflow try, which only a user's clear gives it.
set -Eeuo pipefail
if [[ "${RUNNER_TRY_NUMBER}" -lt 2 ]]; then
  echo "E2E-CLEAR failing: permission missing"
  exit 3
fi
echo "E2E-CLEAR ran again after the clear"
