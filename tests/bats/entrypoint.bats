#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# The image entrypoint: fetch the pinned generation, verify, run, skip by done-marker, forward SIGTERM.

setup_file() {
  load common-setup
  common_start_emulator
}

teardown_file() {
  load common-setup
  common_stop_emulator
}

setup() {
  load common-setup
  common_setup
  ENTRY="${BATS_REPO_ROOT}/runner_image/entrypoint"
  export RUNNER_WORKDIR="${BATS_TEST_TMPDIR}/work"
  unset RUNNER_SCRIPT_MD5 RUNNER_SCRIPT_GENERATION RUNNER_NEEDS RUNNER_RERUN
}

# upload NAME CONTENT: store a script in the emulator; sets GEN and MD5 from the response.
upload() {
  local out
  out="$(printf '%s' "$2" | curl -sf -X POST --data-binary @- \
    "${STORAGE_EMULATOR_HOST}/upload/storage/v1/b/${RUNNER_STATE_BUCKET}/o?uploadType=media&name=$1")"
  GEN="$(jq -r .generation <<<"${out}")"
  MD5="$(jq -r .md5Hash <<<"${out}")"
}

use_gcs() {
  export RUNNER_SCRIPT_URI="gs://${RUNNER_STATE_BUCKET}/$1" RUNNER_SCRIPT_GENERATION="${GEN}" RUNNER_SCRIPT_MD5="${MD5}"
}

@test "entrypoint runs a file:// script in the work dir and propagates exit 3" {
  printf 'echo "in $(pwd)"; exit 3\n' >"${BATS_TEST_TMPDIR}/s.sh"
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  run "${ENTRY}"
  [ "${status}" -eq 3 ]
  grep -q "in ${RUNNER_WORKDIR}" <<<"${output}"
  grep -q 'event=start' <<<"${output}"
  grep -q 'event=end script=.* exit=3 secs=' <<<"${output}"
}

@test "entrypoint fetches the discovered generation from GCS" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo first version'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q '^first version$' <<<"${output}"
}

@test "a script replaced after discovery is not run in its new version (65, with the reason)" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo first version'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo second version'
  run "${ENTRY}"
  [ "${status}" -eq 65 ]
  grep -q 'fetch=missing .* generation='"${RUNNER_SCRIPT_GENERATION}" <<<"${output}"
  grep -q 'changed or was deleted after discovery' <<<"${output}"
  refute_grep 'version$'
}

@test "entrypoint refuses content that does not match the discovered md5 (65)" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo hi'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  export RUNNER_SCRIPT_MD5="AAAAAAAAAAAAAAAAAAAAAA=="
  run "${ENTRY}"
  [ "${status}" -eq 65 ]
  grep -q 'fetch=checksum-mismatch' <<<"${output}"
  refute_grep '^hi$'
}

@test "entrypoint exits 64 naming the missing configuration" {
  unset RUNNER_SCRIPT_URI
  run "${ENTRY}"
  [ "${status}" -eq 64 ]
  grep -q 'config=missing var=RUNNER_SCRIPT_URI' <<<"${output}"
}

@test "a success writes the done-marker; the next run of that date skips (99); rerun runs again" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo ran-it'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q '^ran-it$' <<<"${output}"
  run "${ENTRY}"
  [ "${status}" -eq 99 ]
  grep -q 'event=skipped .* reason=done-marker' <<<"${output}"
  refute_grep '^ran-it$'
  RUNNER_RERUN=true run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q '^ran-it$' <<<"${output}"
  RUNNER_LOGICAL_DATE=2026-11-25 run "${ENTRY}"
  [ "${status}" -eq 0 ]
}

@test "a failed script writes no done-marker" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'exit 5'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  run "${ENTRY}"
  [ "${status}" -eq 5 ]
  run "${ENTRY}"
  [ "${status}" -eq 5 ]
}

@test "SIGTERM is forwarded to the script, its cleanup runs, and the exit is 143" {
  cat >"${BATS_TEST_TMPDIR}/s.sh" <<'SCRIPT'
source "${RUNNER_LIB}"
on_exit echo "cleanup ran"
echo started
sleep 30 &
wait $!
SCRIPT
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  "${ENTRY}" >"${BATS_TEST_TMPDIR}/out" 2>&1 &
  local pid=$! i code=0
  for ((i = 0; i < 50; i++)); do grep -q started "${BATS_TEST_TMPDIR}/out" && break; sleep 0.1; done
  kill -TERM "${pid}"
  wait "${pid}" || code=$?
  [ "${code}" -eq 143 ]
  grep -q 'signal=TERM action=forward' "${BATS_TEST_TMPDIR}/out"
  grep -q '^cleanup ran$' "${BATS_TEST_TMPDIR}/out"
}
