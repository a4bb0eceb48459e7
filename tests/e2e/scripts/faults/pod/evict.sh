#!/usr/bin/env bash
# runner: retries=0 fault=evict,after=1,times=1
# Evicted once: rescheduled without spending a retry (retries=0), then succeeds.
echo "E2E-EVICT try=${RUNNER_TRY_NUMBER}"
sleep 3
