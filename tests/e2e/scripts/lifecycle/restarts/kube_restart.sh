#!/usr/bin/env bash
# runner: cpu=100m memory=64Mi timeout=10m retries=0
# Runs while the Kubernetes double (API server and kubelet) restarts: the pod runs on, no second pod, one run.
set -Eeuo pipefail
echo "E2E-KUBE begin pid=$$"
sleep 30
echo "E2E-KUBE end pid=$$"
