#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=2m schedule=@monthly
echo "E2E-SCHED monthly ran"
