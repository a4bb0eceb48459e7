#!/usr/bin/env bash
# runner: retries=0
echo "E2E-API-FAULTS survived"
