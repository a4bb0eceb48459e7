#!/usr/bin/env bash
# runner: service_account=writer retries=0
# Runs as writer, which the settings bind to team-a/ until the test takes the binding away.
set -Eeuo pipefail
echo "E2E-PLANCHECK ran as ${RUNNER_IDENTITY:-none}"
