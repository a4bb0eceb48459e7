#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# The bearer token stays secret: a script traced with `set -x` never shows it, and no command line carries it.

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
  STORAGE_EMULATOR_HOST="$(cat "${BATS_FILE_TMPDIR}/iam.url")"
  export STORAGE_EMULATOR_HOST
  common_as writer
  JOB="${BATS_TEST_TMPDIR}/job.sh"
  cat >"${JOB}" <<'SCRIPT'
set -Eeuxo pipefail
source "${RUNNER_LIB}"
require gs://state-bkt/out/:write
once seed -- echo "seeding"
step load -- echo "loading"
retry --attempts 2 -- echo "retried"
notify info "loaded" rows=3
on_exit echo "cleanup"
runner_gcs_put state-bkt out/x.txt "${BASH_SOURCE[0]}" >/dev/null
echo "the end"
SCRIPT
}

@test "with set -x, require/once/step/retry/notify/on_exit trace no token and no Authorization header" {
  run bash "${JOB}"
  [ "${status}" -eq 0 ]
  grep -q '^the end$' <<<"${output}"
  grep -q 'require=ok resource=gs://state-bkt perm=write' <<<"${output}"
  refute_grep "$(common_token writer)"
  refute_grep 'Authorization'
  refute_grep '_RUNNER_TOKEN'
  # The script's own commands are still traced, inside the helpers too.
  grep -q '^+ echo seeding$' <<<"${output}"
  grep -q '^+ echo loading$' <<<"${output}"
  grep -q '^+ echo retried$' <<<"${output}"
  grep -qE '^\++ echo cleanup$' <<<"${output}"  # run by eval: one more level
  # ...and not the helpers' insides.
  refute_grep '^\++ (curl|jq|_runner_gcs)'
}

@test "no curl command line carries the token (what ps would show), yet every call is authenticated" {
  common_fake_curl_recorder
  run bash "${JOB}"
  [ "${status}" -eq 0 ]
  grep -q 'storage/v1/b/state-bkt' "${CURL_ARGV_LOG}"
  refute_grep "$(common_token writer)" "${CURL_ARGV_LOG}"
  refute_grep 'Authorization' "${CURL_ARGV_LOG}"
  # The IAM front refused nothing: the header reached it by curl's config on stdin.
  grep -q 'level=info once=seed status=done' <<<"${output}"
  refute_grep 'http=401'
}
