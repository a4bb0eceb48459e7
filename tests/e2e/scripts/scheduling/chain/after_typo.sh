#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi after=chain/typo.sh
echo "E2E-SCHED after_typo ran"
