#!/usr/bin/env bash
# runner: cpu=250m memory=128Mi timeout=10m retries=1
# Load a few rows into Postgres with psql (PG* connection settings come from the pod's environment).
set -Eeuo pipefail
# shellcheck source=/dev/null
source "${RUNNER_LIB}"

retry --attempts 3 --base 1 -- psql -v ON_ERROR_STOP=1 -q <<SQL
CREATE TABLE IF NOT EXISTS daily_load (day date, source text, rows int, PRIMARY KEY (day, source));
INSERT INTO daily_load VALUES ('${RUNNER_LOGICAL_DATE}', 'example', 42)
  ON CONFLICT (day, source) DO UPDATE SET rows = EXCLUDED.rows;
SQL
psql -Atc "SELECT day, source, rows FROM daily_load ORDER BY day DESC LIMIT 3"
