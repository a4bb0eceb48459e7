#!/usr/bin/env bash
# runner: cpu=100m memory=sixty-four
echo "E2E-INVALID-MARKER must never run"
