#!/usr/bin/env bash
# runner: retries=0
echo "E2E-RESTART begin"
sleep 8
echo "E2E-RESTART end"
