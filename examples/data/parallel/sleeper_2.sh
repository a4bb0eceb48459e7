#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=5m
# Three of these run at once: the report shows their start/end times overlapping.
set -Eeuo pipefail
echo "sleeper 2: start $(date -u +%T)"
sleep 8
echo "sleeper 2: end $(date -u +%T)"
