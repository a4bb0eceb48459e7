#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=2m after=chain/extract.sh
echo "E2E-SCHED load ran"
