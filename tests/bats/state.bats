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

teardown() {
  common_stop_fault_proxy
}

setup() {
  load common-setup
  common_setup
  # shellcheck source=runner_image/lib/runner.sh
  source "${RUNNER_LIB}"
  export RUNNER_SCRIPT_MD5="XrY7u+Ae7tCTyyK7j1rNww=="
  MD5_HEX=5eb63bbbe01eeed093cb22bb8f5acdc3
}

@test "step runs the command and records it done in GCS" {
  run runner_step load -- echo "loading"
  [ "${status}" -eq 0 ]
  grep -q '^loading$' <<<"${output}"
  grep -q 'step=load status=done' <<<"${output}"
  run common_object_json "script-runner/state/${RUNNER_SCRIPT_PATH}/${RUNNER_INTERVAL}/${MD5_HEX}/load"
  [ "$(jq -r .status <<<"${output}")" = "done" ]
  [ "$(jq -r '.["try"]' <<<"${output}")" = "1" ]
  [ "$(jq -r .run <<<"${output}")" = "${RUNNER_RUN_ID}" ]
}

@test "step is skipped on the next attempt of the same interval once done" {
  runner_step extract -- true
  export RUNNER_TRY_NUMBER=2
  run runner_step extract -- echo "should not run"
  [ "${status}" -eq 0 ]
  refute_grep 'should not run'
  grep -q 'step=extract status=skipped reason=done-earlier' <<<"${output}"
}

@test "step runs again in the next hourly interval of the same date" {
  runner_step extract -- true
  export RUNNER_INTERVAL=20261124T1400Z-20261124T1500Z RUNNER_RUN_ID=scheduled-14h  # same RUNNER_LOGICAL_DATE
  run runner_step extract -- echo "next hour"
  [ "${status}" -eq 0 ]
  grep -q '^next hour$' <<<"${output}"
}

@test "step runs again for another logical date" {
  runner_step extract -- true
  export RUNNER_LOGICAL_DATE=2026-11-25 RUNNER_INTERVAL=20261125T1300Z-20261125T1400Z
  run runner_step extract -- echo "new day"
  grep -q '^new day$' <<<"${output}"
}

@test "without RUNNER_INTERVAL (a DAG before intervals) steps are keyed by the logical date" {
  unset RUNNER_INTERVAL
  runner_step extract -- true
  run common_object_json "script-runner/state/${RUNNER_SCRIPT_PATH}/2026-11-24/${MD5_HEX}/extract"
  [ "$(jq -r .status <<<"${output}")" = "done" ]
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
      export RUNNER_RUN_ID="race-run-${i}"  # concurrent runs of one date (a manual run beside the scheduled one)
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
  export RUNNER_RUN_ID=another RUNNER_LOGICAL_DATE=2027-01-01 RUNNER_INTERVAL=20270101T0000Z
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

@test "the interval is RUNNER_INTERVAL, else the logical date" {
  run runner_interval
  [ "${output}" = "20261124T1300Z-20261124T1400Z" ]
  RUNNER_INTERVAL="" run runner_interval
  [ "${output}" = "2026-11-24" ]
}

@test "a pod evicted mid-step: the rescheduled pod of the same attempt reclaims its step instead of exiting 73" {
  cat >"${BATS_TEST_TMPDIR}/job.sh" <<'SCRIPT'
set -Eeuo pipefail
source "${RUNNER_LIB}"
step a -- echo "ran a"
step b -- bash -c 'echo "ran b"; if [[ ! -e "${RUNNER_WORKDIR}/evicted" ]]; then touch "${RUNNER_WORKDIR}/evicted"; kill -KILL "${PPID}"; fi'
step c -- echo "ran c"
SCRIPT
  run bash "${BATS_TEST_TMPDIR}/job.sh"
  [ "${status}" -eq 137 ]
  run common_object_json "script-runner/state/${RUNNER_SCRIPT_PATH}/${RUNNER_INTERVAL}/${MD5_HEX}/b"
  [ "$(jq -r .status <<<"${output}")" = "running" ]
  # Same run, same try number: the eviction did not spend a try.
  run bash "${BATS_TEST_TMPDIR}/job.sh"
  [ "${status}" -eq 0 ]
  grep -q 'step=a status=skipped' <<<"${output}"
  grep -q 'step=b status=reclaimed reason="left running by an earlier pod of this attempt (run run-.* try 1)"' <<<"${output}"
  grep -q '^ran b$' <<<"${output}"
  grep -q '^ran c$' <<<"${output}"
}

@test "a step left running by another run is not taken over: 73, naming the record to delete" {
  local object="script-runner/state/${RUNNER_SCRIPT_PATH}/${RUNNER_INTERVAL}/${MD5_HEX}/load"
  printf '{"status": "running", "run": "other-run", "try": 1}' | curl -sf -X POST --data-binary @- \
    "${STORAGE_EMULATOR_HOST}/upload/storage/v1/b/${RUNNER_STATE_BUCKET}/o?uploadType=media&name=${object}" >/dev/null
  export RUNNER_TRY_NUMBER=2
  run runner_step load -- echo "should not run"
  [ "${status}" -eq 73 ]
  refute_grep 'should not run'
  grep -q "status=claimed reason=\"run other-run try 1 is running it\" fix=\"if that run is over, delete gs://state-bkt/${object}\"" <<<"${output}"
}

@test "a fixed script re-uploaded in the same interval runs the steps its broken version finished" {
  runner_step extract -- true
  export RUNNER_SCRIPT_MD5="1B2M2Y8AsgTpgAmY7PhCfg=="  # another content
  run runner_step extract -- echo "extract of the new version"
  [ "${status}" -eq 0 ]
  grep -q '^extract of the new version$' <<<"${output}"
  run common_list "script-runner/state/${RUNNER_SCRIPT_PATH}/${RUNNER_INTERVAL}/"
  grep -q "/${MD5_HEX}/extract$" <<<"${output}"
  grep -q "/d41d8cd98f00b204e9800998ecf8427e/extract$" <<<"${output}"
}

@test "once does not run its command when GCS keeps answering 503: retried, then 75" {
  export RUNNER_SLEEP=true
  common_fault_proxy -1 503
  run runner_once seed -- echo "seeding"
  [ "${status}" -eq 75 ]
  refute_grep '^seeding$'
  grep -q 'once=seed status=unknown exit=75 reason="its marker could not be checked: not running on an unknown answer"' <<<"${output}"
  [ "$(grep -c ' -> 503$' "${FAULT_LOG}")" -eq 5 ]
  [ "$(grep -c 'gcs=retry' <<<"${output}")" -eq 4 ]
}

@test "step does not run its command when GCS keeps answering 429: retried, then 75" {
  export RUNNER_SLEEP=true
  common_fault_proxy -1 429
  run runner_step load -- echo "loading"
  [ "${status}" -eq 75 ]
  refute_grep '^loading$'
  grep -q 'step=load status=unknown exit=75' <<<"${output}"
  [ "$(grep -c ' -> 429$' "${FAULT_LOG}")" -eq 5 ]
}

@test "a transient 503 is retried and once then sees the marker that exists" {
  runner_once seed -- true
  export RUNNER_SLEEP=true
  common_fault_proxy 2 503
  run runner_once seed -- echo "seeding again"
  [ "${status}" -eq 0 ]
  refute_grep '^seeding again$'
  grep -q 'once=seed status=skipped reason=marker-exists' <<<"${output}"
  [ "$(grep -c 'gcs=retry attempt=[12] http=503' <<<"${output}")" -eq 2 ]
}

@test "a step interrupted by SIGTERM is recorded failed (exit 143), not left running" {
  cat >"${BATS_TEST_TMPDIR}/job.sh" <<'SCRIPT'
set -Eeuo pipefail
source "${RUNNER_LIB}"
step long -- bash -c 'echo started; exec sleep 30'
SCRIPT
  setsid bash "${BATS_TEST_TMPDIR}/job.sh" >"${BATS_TEST_TMPDIR}/out" 2>&1 &
  local pid=$! i code=0
  for ((i = 0; i < 50; i++)); do grep -q started "${BATS_TEST_TMPDIR}/out" && break; sleep 0.1; done
  kill -TERM -- "-${pid}"
  wait "${pid}" || code=$?
  [ "${code}" -eq 143 ]
  grep -q 'step=long status=failed exit=143 reason=signal' "${BATS_TEST_TMPDIR}/out"
  run common_object_json "script-runner/state/${RUNNER_SCRIPT_PATH}/${RUNNER_INTERVAL}/${MD5_HEX}/long"
  [ "$(jq -r .status <<<"${output}")" = "failed" ]
  [ "$(jq -r .exit <<<"${output}")" = "143" ]
}

@test "a claim whose reply was lost (503 after the write took effect) is recognised as this attempt's own, not 73" {
  export RUNNER_SLEEP=true
  common_fault_proxy 1 503 "" POST after
  run runner_step load -- echo "loading"
  [ "${status}" -eq 0 ]
  grep -q '^loading$' <<<"${output}"
  refute_grep 'status=claimed'
  grep -q 'POST .* -> 503$' "${FAULT_LOG}"
  run common_object_json "script-runner/state/${RUNNER_SCRIPT_PATH}/${RUNNER_INTERVAL}/${MD5_HEX}/load"
  [ "$(jq -r .status <<<"${output}")" = "done" ]
}
