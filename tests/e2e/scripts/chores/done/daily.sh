#!/usr/bin/env bash
# runner: retries=0
# Runs once per logical date: the runner's done-marker skips it on the next run unless rerun is asked for.
echo "E2E-DAILY ran"
