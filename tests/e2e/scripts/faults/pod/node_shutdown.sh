#!/usr/bin/env bash
# runner: retries=0 fault=node_shutdown,after=1,times=1
# The node shuts down once (spot/preemptible VM): the pod ends Failed with reason Terminated and a
# DisruptionTarget condition; rescheduled without spending a retry (retries=0), then succeeds.
echo "E2E-NODE-SHUTDOWN try=${RUNNER_TRY_NUMBER}"
sleep 3
