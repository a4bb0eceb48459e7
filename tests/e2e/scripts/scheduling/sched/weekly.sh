#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=2m schedule=0 6 * * 1
echo "E2E-SCHED weekly ran"
