#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# runner_step and runner_once against the real GCS emulator: checkpoints, resume after a kill, races.

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
  # shellcheck source=runner_image/lib/runner.sh
  source "${RUNNER_LIB}"
}

@test "step runs the command and records it done in GCS" {
  run runner_step load -- echo "loading"
  [ "${status}" -eq 0 ]
  grep -q '^loading$' <<<"${output}"
  grep -q 'step=load status=done' <<<"${output}"
  run common_object_json "script-runner/state/${RUNNER_SCRIPT_PATH}/2026-11-24/load"
  [ "$(jq -r .status <<<"${output}")" = "done" ]
  [ "$(jq -r '.["try"]' <<<"${output}")" = "1" ]
}

@test "step is skipped on the next attempt of the same date once done" {
  runner_step extract -- true
  export RUNNER_TRY_NUMBER=2
  run runner_step extract -- echo "should not run"
  [ "${status}" -eq 0 ]
  refute_grep 'should not run'
  grep -q 'step=extract status=skipped reason=done-earlier' <<<"${output}"
}

@test "step runs again for another logical date" {
  runner_step extract -- true
  export RUNNER_LOGICAL_DATE=2026-11-25
  run runner_step extract -- echo "new day"
  grep -q '^new day$' <<<"${output}"
}

@test "a failed step returns the command's code and is retried by the next attempt" {
  run runner_step flaky -- bash -c 'exit 4'
  [ "${status}" -eq 4 ]
  grep -q 'step=flaky status=failed exit=4' <<<"${output}"
  export RUNNER_TRY_NUMBER=2
  run runner_step flaky -- echo "second try"
  [ "${status}" -eq 0 ]
  grep -q '^second try$' <<<"${output}"
}

@test "a script killed mid-step resumes at that step on the next try" {
  cat >"${BATS_TEST_TMPDIR}/job.sh" <<'SCRIPT'
set -Eeuo pipefail
source "${RUNNER_LIB}"
step a -- echo "ran a"
step b -- bash -c 'echo "ran b"; if [[ "${RUNNER_TRY_NUMBER}" == 1 ]]; then kill -KILL "${PPID}"; fi'
step c -- echo "ran c"
SCRIPT
  run bash "${BATS_TEST_TMPDIR}/job.sh"
  [ "${status}" -eq 137 ]
  grep -q '^ran a$' <<<"${output}"
  refute_grep '^ran c$'
  export RUNNER_TRY_NUMBER=2
  run bash "${BATS_TEST_TMPDIR}/job.sh"
  [ "${status}" -eq 0 ]
  refute_grep '^ran a$'
  grep -q 'step=a status=skipped' <<<"${output}"
  grep -q '^ran b$' <<<"${output}"
  grep -q '^ran c$' <<<"${output}"
}

@test "two attempts racing for one step: exactly one runs it" {
  local i
  for i in 1 2 3 4 5 6; do
    (
      code=0
      runner_step race -- bash -c "echo winner-${i} >>'${BATS_TEST_TMPDIR}/ran'; sleep 1" \
        >"${BATS_TEST_TMPDIR}/out-${i}" 2>&1 || code=$?
      echo "${code}" >"${BATS_TEST_TMPDIR}/rc-${i}"
    ) &
  done
  wait
  [ "$(wc -l <"${BATS_TEST_TMPDIR}/ran")" -eq 1 ]
  [ "$(cat "${BATS_TEST_TMPDIR}"/rc-* | grep -c '^0$')" -eq 1 ]
  [ "$(cat "${BATS_TEST_TMPDIR}"/rc-* | grep -c '^73$')" -eq 5 ]
  grep -q 'status=claimed' "${BATS_TEST_TMPDIR}"/out-*
}

@test "step without a state bucket runs the command and says it is not checkpointed" {
  unset RUNNER_STATE_BUCKET
  run runner_step x -- echo "unchecked"
  [ "${status}" -eq 0 ]
  grep -q '^unchecked$' <<<"${output}"
  grep -q 'action=run-without-checkpoint' <<<"${output}"
}

@test "once runs its command a single time across runs and dates" {
  run runner_once seed -- echo "seeding"
  grep -q '^seeding$' <<<"${output}"
  export RUNNER_RUN_ID=another RUNNER_LOGICAL_DATE=2027-01-01
  run runner_once seed -- echo "seeding"
  [ "${status}" -eq 0 ]
  refute_grep '^seeding$'
  grep -q 'once=seed status=skipped reason=marker-exists' <<<"${output}"
}

@test "once leaves no marker when its command fails" {
  run runner_once broken -- bash -c 'exit 5'
  [ "${status}" -eq 5 ]
  run runner_once broken -- echo "again"
  grep -q '^again$' <<<"${output}"
}

@test "done-marker object is keyed by script, content hash and date" {
  run runner_done_marker_object "XrY7u+Ae7tCTyyK7j1rNww=="
  [ "${output}" = "script-runner/done/${RUNNER_SCRIPT_PATH}/5eb63bbbe01eeed093cb22bb8f5acdc3/2026-11-24" ]
}
