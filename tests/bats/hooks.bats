#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# runner_on_exit: reverse order, once, on success, failure and SIGTERM.

setup() {
  load common-setup
  common_setup
  JOB="${BATS_TEST_TMPDIR}/job.sh"
}

write_job() {
  {
    echo 'set -Eeuo pipefail'
    echo 'source "${RUNNER_LIB}"'
    echo 'on_exit echo "hook one"'
    echo 'on_exit echo "hook two"'
    echo 'on_exit echo "hook three"'
    cat
  } >"${JOB}"
}

hooks_in_order() {
  grep -E '^hook (one|two|three)$' <<<"${output}" | tr '\n' ' '
}

@test "on_exit hooks run in reverse order on success" {
  write_job <<<'echo "work done"'
  run bash "${JOB}"
  [ "${status}" -eq 0 ]
  [ "$(hooks_in_order)" = "hook three hook two hook one " ]
}

@test "on_exit hooks run on failure and the exit code is preserved" {
  write_job <<<'false'
  run bash "${JOB}"
  [ "${status}" -eq 1 ]
  [ "$(hooks_in_order)" = "hook three hook two hook one " ]
  grep -q 'on_exit=run hook=3 status=1' <<<"${output}"
}

@test "on_exit hooks run once on SIGTERM and the script exits 143" {
  write_job <<<'echo started; sleep 30 & wait $!'
  bash "${JOB}" >"${BATS_TEST_TMPDIR}/out" 2>&1 &
  local pid=$!
  local i
  for ((i = 0; i < 50; i++)); do grep -q started "${BATS_TEST_TMPDIR}/out" && break; sleep 0.1; done
  kill -TERM "${pid}"
  local code=0
  wait "${pid}" || code=$?
  [ "${code}" -eq 143 ]
  output="$(cat "${BATS_TEST_TMPDIR}/out")"
  [ "$(hooks_in_order)" = "hook three hook two hook one " ]
  grep -q 'signal=TERM action=cleanup' <<<"${output}"
}

@test "a failing hook is logged and the others still run" {
  {
    echo 'set -Eeuo pipefail'
    echo 'source "${RUNNER_LIB}"'
    echo 'on_exit echo "hook one"'
    echo 'on_exit false'
    echo 'on_exit echo "hook three"'
  } >"${JOB}"
  run bash "${JOB}"
  [ "${status}" -eq 0 ]
  grep -q 'on_exit=failed hook=2' <<<"${output}"
  grep -q '^hook one$' <<<"${output}"
}

@test "hook arguments keep their quoting" {
  write_job <<<'on_exit printf "<%s>\n" "a b" "c"'
  run bash "${JOB}"
  grep -q '^<a b>$' <<<"${output}"
}
