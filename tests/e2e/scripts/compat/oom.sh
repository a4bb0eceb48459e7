#!/usr/bin/env bash
# runner: memory=64Mi retries=1 oom_retry=true fault=oom,after=1,times=1
# The double OOM-kills the first pod; the retry must get 128Mi and succeed.
echo "E2E-OOM try=${RUNNER_TRY_NUMBER}"
sleep 3
