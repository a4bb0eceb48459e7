#!/usr/bin/env bash
# runner: retries=0 fault=preempt,after=1,times=1
# Preempted once (the pod is deleted, as preemption, a drain or the Eviction API do): rescheduled without
# spending a retry (retries=0), then succeeds.
echo "E2E-PREEMPT try=${RUNNER_TRY_NUMBER}"
sleep 3
