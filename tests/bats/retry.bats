#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# runner_retry: backoff with full jitter, attempts, --on, logging.

setup() {
  load common-setup
  common_setup
  # shellcheck source=runner_image/lib/runner.sh
  source "${RUNNER_LIB}"
  export RUNNER_SLEEP="record_sleep"
  SLEEPS="${BATS_TEST_TMPDIR}/sleeps"
  COUNT="${BATS_TEST_TMPDIR}/count"
  : >"${SLEEPS}"
  echo 0 >"${COUNT}"
}

record_sleep() { echo "$1" >>"${SLEEPS}"; }

# fails_times N CODE: fail with CODE for the first N calls, then succeed.
fails_times() {
  local n
  n=$(($(cat "${COUNT}") + 1))
  echo "${n}" >"${COUNT}"
  [[ ${n} -gt $1 ]] || return "$2"
}

@test "retry succeeds after transient failures and logs each attempt" {
  run runner_retry --attempts 5 --base 1 -- fails_times 2 7
  [ "${status}" -eq 0 ]
  [ "$(cat "${COUNT}")" -eq 3 ]
  [ "$(grep -c 'retry=backoff' <<<"${output}")" -eq 2 ]
  grep -q 'retry=ok attempt=3' <<<"${output}"
}

@test "retry gives up with the last exit code after the attempts" {
  run runner_retry --attempts 3 --base 1 -- fails_times 99 7
  [ "${status}" -eq 7 ]
  [ "$(cat "${COUNT}")" -eq 3 ]
  grep -q 'retry=exhausted attempts=3 exit=7' <<<"${output}"
}

@test "retry --on retries only the listed codes" {
  run runner_retry --attempts 5 --on 75 -- fails_times 99 3
  [ "${status}" -eq 3 ]
  [ "$(cat "${COUNT}")" -eq 1 ]
  grep -q 'reason=not-retryable' <<<"${output}"
}

@test "retry delays follow full jitter within min(max, base*2^k)" {
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    echo 0 >"${COUNT}"
    runner_retry --attempts 6 --base 2 --max 10 -- fails_times 99 1 2>/dev/null || true
  done
  local caps=(2 4 8 10 10) k=0 delay
  [ "$(wc -l <"${SLEEPS}")" -eq 50 ]
  while read -r delay; do
    awk -v d="${delay}" -v c="${caps[$((k % 5))]}" 'BEGIN { exit !(d >= 0 && d <= c) }'
    k=$((k + 1))
  done <"${SLEEPS}"
  # jitter: not every delay equals its cap
  [ "$(sort -u "${SLEEPS}" | wc -l)" -gt 5 ]
}

@test "retry with real short sleeps waits between attempts" {
  unset RUNNER_SLEEP
  local start=${SECONDS}
  run runner_retry --attempts 3 --base 0.2 --max 0.2 -- fails_times 99 1
  [ "${status}" -eq 1 ]
  [ $((SECONDS - start)) -le 3 ]
}

@test "retry rejects unknown options and a missing command with a usage message" {
  run runner_retry --tries 3 -- true
  [ "${status}" -eq 2 ]
  grep -q 'usage: retry' <<<"${output}"
  run runner_retry --attempts 2 --
  [ "${status}" -eq 2 ]
  grep -q 'no command given' <<<"${output}"
}
