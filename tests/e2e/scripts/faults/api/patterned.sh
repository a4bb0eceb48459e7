#!/usr/bin/env bash
# runner: memory=64Mi retries=1 oom_retry=true
# No fault directive: the test injects an OOM by pod-name pattern through the double's admin API.
echo "E2E-PATTERN try=${RUNNER_TRY_NUMBER}"
sleep 2
