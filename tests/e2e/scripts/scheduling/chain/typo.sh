#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi after=chain/extrct.sh
echo "E2E-SCHED typo ran"
