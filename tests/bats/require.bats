#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# runner_require: IAM preflight through the local IAM front (a real permission model on the emulator).

setup_file() {
  load common-setup
  common_start_emulator
  common_start_iam_front
}

teardown_file() {
  load common-setup
  common_stop_iam_front
  common_stop_emulator
}

setup() {
  load common-setup
  common_setup
  # shellcheck source=runner_image/lib/runner.sh
  source "${RUNNER_LIB}"
  STORAGE_EMULATOR_HOST="$(cat "${BATS_FILE_TMPDIR}/iam.url")"
}

@test "require passes when the identity holds the permissions" {
  common_as writer
  run runner_require gs://state-bkt/out/:write gs://state-bkt/in/:read
  [ "${status}" -eq 0 ]
  grep -q 'require=ok resource=gs://state-bkt perm=write' <<<"${output}"
}

@test "require names the identity, the resource, the missing permissions and the fix" {
  common_as reader
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
  common_as writer
  run runner_require gs://state-bkt/x:delete
  [ "${status}" -eq 64 ]
  grep -q 'fix="use :read or :write"' <<<"${output}"
  run runner_require s3://bucket:read
  [ "${status}" -eq 64 ]
  grep -q 'fix="use gs://bucket/prefix:read|write"' <<<"${output}"
}

@test "writes are enforced too: the reader cannot upload, the writer can" {
  echo data >"${BATS_TEST_TMPDIR}/f"
  common_as reader
  run runner_gcs_put state-bkt out/f "${BATS_TEST_TMPDIR}/f"
  [ "${status}" -eq 75 ]
  grep -q 'http=403' <<<"${output}"
  common_as writer
  run runner_gcs_put state-bkt out/f "${BATS_TEST_TMPDIR}/f"
  [ "${status}" -eq 0 ]
}
