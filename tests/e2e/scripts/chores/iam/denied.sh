#!/usr/bin/env bash
# runner: service_account=reader retries=2
# runner: needs=gs://composer-bucket-out/reports/:write
# The reader identity may not write there: the runner's preflight stops it before any of its work, and the
# failure is not retried (a missing permission is fatal).
echo "E2E-IAM work started (must never print)"
