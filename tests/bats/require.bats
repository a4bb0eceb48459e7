#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# runner_require: IAM preflight through the local IAM front (a real permission model on the emulator).

setup_file() {
  load common-setup
  common_start_emulator
  local port policy
  port="$(_common_free_port)"
  policy="${BATS_FILE_TMPDIR}/policy.json"
  cat >"${policy}" <<'JSON'
{"identities": {
  "reader": {"email": "reader@p.iam.gserviceaccount.com",
             "grants": [{"bucket": "state-bkt", "role": "roles/storage.objectViewer"}]},
  "writer": {"email": "writer@p.iam.gserviceaccount.com",
             "grants": [{"bucket": "state-bkt", "role": "roles/storage.objectUser"}]}}}
JSON
  (cd "${BATS_REPO_ROOT}" && exec .venv/bin/python -m local.iam_front --port "${port}" \
    --upstream "$(cat "${BATS_FILE_TMPDIR}/emulator.url")" --policy "${policy}") \
    >"${BATS_FILE_TMPDIR}/iam.log" 2>&1 &
  echo $! >"${BATS_FILE_TMPDIR}/iam.pid"
  local i
  for ((i = 0; i < 100; i++)); do
    curl -sf "http://127.0.0.1:${port}/_iam/health" >/dev/null && break
    sleep 0.1
  done
  printf 'http://127.0.0.1:%s' "${port}" >"${BATS_FILE_TMPDIR}/iam.url"
  printf 'local-token-reader' >"${BATS_FILE_TMPDIR}/reader.token"
  printf 'local-token-writer' >"${BATS_FILE_TMPDIR}/writer.token"
}

teardown_file() {
  load common-setup
  kill "$(cat "${BATS_FILE_TMPDIR}/iam.pid")" 2>/dev/null || true
  common_stop_emulator
}

setup() {
  load common-setup
  common_setup
  # shellcheck source=runner_image/lib/runner.sh
  source "${RUNNER_LIB}"
  STORAGE_EMULATOR_HOST="$(cat "${BATS_FILE_TMPDIR}/iam.url")"
}

as() {
  export RUNNER_ACCESS_TOKEN_FILE="${BATS_FILE_TMPDIR}/$1.token"
  export RUNNER_IDENTITY="$1@p.iam.gserviceaccount.com"
}

@test "require passes when the identity holds the permissions" {
  as writer
  run runner_require gs://state-bkt/out/:write gs://state-bkt/in/:read
  [ "${status}" -eq 0 ]
  grep -q 'require=ok resource=gs://state-bkt perm=write' <<<"${output}"
}

@test "require names the identity, the resource, the missing permissions and the fix" {
  as reader
  run runner_require gs://state-bkt/in/:read gs://state-bkt/out/:write
  [ "${status}" -eq 77 ]
  grep -q 'require=denied identity=reader@p.iam.gserviceaccount.com resource=gs://state-bkt missing=storage.objects.create,storage.objects.delete' <<<"${output}"
  grep -q 'fix="grant roles/storage.objectUser on gs://state-bkt to reader@p.iam.gserviceaccount.com"' <<<"${output}"
}

@test "require reports an unknown bucket or identity as unavailable, not as ok" {
  export RUNNER_ACCESS_TOKEN_FILE="${BATS_TEST_TMPDIR}/bogus"
  printf 'bogus' >"${RUNNER_ACCESS_TOKEN_FILE}"
  run runner_require gs://state-bkt/x:read
  [ "${status}" -eq 77 ]
  grep -q 'require=unavailable resource=gs://state-bkt http=401' <<<"${output}"
}

@test "require rejects a bad spec with the fix" {
  as writer
  run runner_require gs://state-bkt/x:delete
  [ "${status}" -eq 64 ]
  grep -q 'fix="use :read or :write"' <<<"${output}"
  run runner_require s3://bucket:read
  [ "${status}" -eq 64 ]
  grep -q 'fix="use gs://bucket/prefix:read|write"' <<<"${output}"
}

@test "writes are enforced too: the reader cannot upload, the writer can" {
  echo data >"${BATS_TEST_TMPDIR}/f"
  as reader
  run runner_gcs_put state-bkt out/f "${BATS_TEST_TMPDIR}/f"
  [ "${status}" -eq 75 ]
  grep -q 'http=403' <<<"${output}"
  as writer
  run runner_gcs_put state-bkt out/f "${BATS_TEST_TMPDIR}/f"
  [ "${status}" -eq 0 ]
}
