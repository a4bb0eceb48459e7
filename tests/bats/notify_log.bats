#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# runner_notify (structured events in GCS) and runner_log (greppable key=value lines).

setup_file() {
  bats_require_minimum_version 1.5.0
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

@test "log lines are greppable key=value with level and timestamp" {
  run runner_log info step=load status=done secs=3.2
  [[ "${output}" =~ ^\[runner\]\ ts=[0-9T:-]+Z\ level=info\ step=load\ status=done\ secs=3.2$ ]]
}

@test "warnings and errors go to stderr, info to stdout" {
  run --separate-stderr runner_log warn x=1
  [ -z "${output}" ]
  grep -q 'level=warn x=1' <<<"${stderr}"
}

@test "notify writes a JSON event under events/<run>/<script>/ and logs it" {
  run runner_notify error "load failed" table=orders rows=0
  [ "${status}" -eq 0 ]
  grep -q 'event=notify msg="load failed" table=orders rows=0' <<<"${output}"
  local name
  name="$(common_list "script-runner/events/${RUNNER_RUN_ID}/${RUNNER_SCRIPT_PATH}/")"
  [ -n "${name}" ]
  run common_object_json "${name}"
  [ "$(jq -r .level <<<"${output}")" = "error" ]
  [ "$(jq -r .message <<<"${output}")" = "load failed" ]
  [ "$(jq -r .table <<<"${output}")" = "orders" ]
  [ "$(jq -r .script <<<"${output}")" = "${RUNNER_SCRIPT_PATH}" ]
}

@test "notify never fails the script when GCS is unreachable" {
  export STORAGE_EMULATOR_HOST=http://127.0.0.1:9 RUNNER_GCS_TIMEOUT=2 RUNNER_SLEEP=true
  run runner_notify info "hello"
  [ "${status}" -eq 0 ]
  grep -q 'notify=not-stored' <<<"${output}"
}

@test "short aliases exist unless the script defines its own" {
  run bash -c 'step() { echo mine; }; source "${RUNNER_LIB}"; step; type -t retry'
  [ "${lines[0]}" = "mine" ]
  [ "${lines[1]}" = "function" ]
}
