#!/usr/bin/env bash
# runner: cpu=250m memory=lots
# Rejected at discovery ("memory=lots" is not a Kubernetes quantity): never launched, listed in the report.
echo "this never runs"
