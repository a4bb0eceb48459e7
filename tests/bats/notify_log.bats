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

@test "the log timestamp is UTC as date -u prints it, whatever TZ the script has, and leaves TZ as it was" {
  local before after ts tz
  # A POSIX TZ (no zone files needed), exported or only set in the shell, or none.
  for tz in exported unexported unset; do
    run bash -c '
      case "$1" in
        exported) export TZ=JST-9 ;;
        unexported) TZ=JST-9 ;;
        unset) unset TZ ;;
      esac
      source "${RUNNER_LIB}"
      date -u +%Y-%m-%dT%H:%M:%SZ
      runner_log info x=1
      date -u +%Y-%m-%dT%H:%M:%SZ
      printf "zone=%(%Z)T tz=%s\n" -1 "${TZ-none}"
      declare -p TZ 2>/dev/null || echo "no TZ"' _ "${tz}"
    [ "${status}" -eq 0 ]
    before="${lines[0]}" after="${lines[2]}"
    [[ "${lines[1]}" =~ ^\[runner\]\ ts=([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)\ level=info\ x=1$ ]]
    ts="${BASH_REMATCH[1]}"
    [[ "${ts}" == "${before}" || "${ts}" == "${after}" ]] || { echo "${tz}: ts=${ts}, date -u ${before}..${after}" >&2; return 1; }
    case "${tz}" in
      exported) [ "${lines[3]}" = "zone=JST tz=JST-9" ] && [ "${lines[4]}" = 'declare -x TZ="JST-9"' ] ;;
      unexported) [ "${lines[4]}" = 'declare -- TZ="JST-9"' ] ;;
      unset) [ "${lines[4]}" = "no TZ" ] ;;
    esac
  done
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
