#!/usr/bin/env bash
# runner: retries=0 start_timeout=5s fault=unschedulable
echo "E2E-NEVER-RUNS"
