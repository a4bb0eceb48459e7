#!/usr/bin/env bash
# runner: cpu=250m memory=2Gi retries=0
set -Eeuo pipefail
echo "E2E-PRESET-MARKER preset=composer2"
