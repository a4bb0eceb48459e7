#!/usr/bin/env bash
# runner: retries=0 start_timeout=5s fault=image_pull
echo "E2E-NEVER-RUNS"
