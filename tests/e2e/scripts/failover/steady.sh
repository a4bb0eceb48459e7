#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=5m retries=0
# A deferred script that outlives its triggerer: it must run to its end while the trigger moves.
set -Eeuo pipefail
echo "E2E-FAILOVER started"
for i in $(seq 1 45); do
  sleep 1
  if ((i % 15 == 0)); then echo "E2E-FAILOVER at ${i}s"; fi
done
echo "E2E-FAILOVER finished"
