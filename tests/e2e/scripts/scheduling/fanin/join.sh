#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=2m
# runner: after=fanin/*.sh
echo "E2E-SCHED join ran"
