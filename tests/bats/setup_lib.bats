#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; the code strings expand in the inner bash
# k8s/lib/setup.sh: the error exit, --help, quoting and the dry-run/run wrapper the k8s/setup-*.sh scripts
# share. Each test sources the library in a fresh bash, as the scripts do.

setup() {
  LIB="${BATS_TEST_DIRNAME}/../../k8s/lib/setup.sh"
  export LIB
}

bats_require_minimum_version 1.5.0

# in_lib CODE [ARG...]: run CODE (ARGs as its $1...) in a bash that has sourced the library with
#   SETUP_PROG=demo.
in_lib() {
  local code="$1"
  shift
  bash -c 'set -Eeuo pipefail; SETUP_PROG=demo; source "$LIB"; '"${code}" demo "$@"
}

@test "setup_quote leaves safe words bare and quotes the rest so bash reads back the same word" {
  run in_lib 'setup_quote gs://bkt/data/a_b-1.sh'
  [ "$output" = "gs://bkt/data/a_b-1.sh" ]
  for word in "two words" "it's" 'a"b' '$(exit 3)' '' "title=t,expression=a || b"; do
    quoted="$(in_lib 'setup_quote "$1"' "${word}")"
    [ "$(eval "printf '%s' ${quoted}")" = "${word}" ]
    [[ "${quoted}" == \'* ]]
  done
}

@test "setup_run with DRY_RUN=true prints a command line that bash splits into the same arguments and runs nothing" {
  run in_lib 'DRY_RUN=true; setup_run touch "$BATS_TEST_TMPDIR/never made" "it'"'"'s"'
  [ "$status" -eq 0 ]
  [ "$output" = "touch '${BATS_TEST_TMPDIR}/never made' 'it'\\''s'" ]
  [ ! -e "${BATS_TEST_TMPDIR}/never made" ]
  eval "set -- ${output}"
  [ "$#" -eq 3 ] && [ "$2" = "${BATS_TEST_TMPDIR}/never made" ] && [ "$3" = "it's" ]
}

@test "setup_run without a dry run echoes the command to stderr after + and returns its status" {
  run --separate-stderr in_lib 'DRY_RUN=false; setup_run touch "$BATS_TEST_TMPDIR/made"'
  [ "$status" -eq 0 ]
  [ -e "${BATS_TEST_TMPDIR}/made" ]
  [ "$output" = "" ]
  [ "$stderr" = "+ touch ${BATS_TEST_TMPDIR}/made" ]
  run in_lib 'DRY_RUN=false; setup_run false || echo "status $?"'
  [ "${lines[-1]}" = "status 1" ]
}

@test "setup_die names the script and exits 64" {
  run --separate-stderr in_lib 'setup_die "--bucket is required"; echo not reached'
  [ "$status" -eq 64 ]
  [ "$output" = "" ]
  [ "$stderr" = "demo: --bucket is required" ]
}

@test "setup_note prints a comment line" {
  run in_lib 'setup_note "topic t exists: kept"'
  [ "$output" = "# topic t exists: kept" ]
}

@test "setup_usage prints the comment block after the shebang without its marks and stops at the first code line" {
  printf '%s\n' '#!/usr/bin/env bash' '# Do a thing.' '#' '# Usage: demo.sh --flag' 'set -Eeuo pipefail' \
    '# a later comment' >"${BATS_TEST_TMPDIR}/demo.sh"
  run in_lib 'setup_usage "$1"' "${BATS_TEST_TMPDIR}/demo.sh"
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 2 ]
  [ "${lines[0]}" = "Do a thing." ]
  [ "${lines[1]}" = "Usage: demo.sh --flag" ]
  [[ "$output" != *"set -E"* && "$output" != *"later"* ]]
}
