#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=2m
sleep 4
echo "E2E-SCHED a done"
