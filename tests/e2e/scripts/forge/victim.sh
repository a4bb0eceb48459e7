#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi retries=0 after=hostile.sh
# Runs after the hostile script forged its done-marker: it must still run.
set -Eeuo pipefail
echo "E2E-FORGE victim ran"
