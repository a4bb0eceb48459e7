#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# Per-script identity by impersonation and per-script secrets, against the real local IAM front (its
# emulated IAM Credentials and Secret Manager calls) before a real GCS emulator. The pod's own identity is
# "env" (a token file stands in for the metadata server); it may impersonate "a", not "b".

setup_file() {
  load common-setup
  common_start_emulator
  cat >"${BATS_FILE_TMPDIR}/identity-policy.json" <<'JSON'
{"identities": {
  "env": {"email": "env@p.iam.gserviceaccount.com", "grants": []},
  "a": {"email": "a@p.iam.gserviceaccount.com",
        "iam_policy": [{"role": "roles/iam.serviceAccountTokenCreator",
                        "members": ["serviceAccount:env@p.iam.gserviceaccount.com"]}],
        "grants": [{"bucket": "state-bkt", "prefix": "team-a/", "role": "roles/storage.objectUser"},
                   {"bucket": "state-bkt", "prefix": "script-runner/", "role": "roles/storage.objectUser"}]},
  "b": {"email": "b@p.iam.gserviceaccount.com",
        "grants": [{"bucket": "state-bkt", "prefix": "team-b/", "role": "roles/storage.objectUser"}]}},
 "secrets": {
  "projects/p/secrets/a-password": {"versions": {"1": "hunter2-of-a"},
    "iam_policy": [{"role": "roles/secretmanager.secretAccessor",
                    "members": ["serviceAccount:a@p.iam.gserviceaccount.com"]}]},
  "projects/p/secrets/b-password": {"versions": {"1": "hunter2-of-b"},
    "iam_policy": [{"role": "roles/secretmanager.secretAccessor",
                    "members": ["serviceAccount:b@p.iam.gserviceaccount.com"]}]}}}
JSON
  common_start_iam_front "${BATS_FILE_TMPDIR}/identity-policy.json"
  local f
  for f in team-a/in.txt team-b/in.txt; do
    curl -sf -X POST --data-binary "data of ${f}" \
      "$(cat "${BATS_FILE_TMPDIR}/emulator.url")/upload/storage/v1/b/state-bkt/o?uploadType=media&name=${f/\//%2F}" >/dev/null
  done
}

teardown_file() {
  load common-setup
  common_stop_iam_front
  common_stop_emulator
}

setup() {
  load common-setup
  common_setup
  IAM="$(cat "${BATS_FILE_TMPDIR}/iam.url")"
  export STORAGE_EMULATOR_HOST="${IAM}"
  export CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS="${IAM}/"
  export CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER="${IAM}/"
  export RUNNER_ACCESS_TOKEN_FILE="${BATS_FILE_TMPDIR}/env.token"
}

# entry SCRIPT-CONTENT: run the entrypoint on a file:// script.
entry() {
  printf '%s\n' "$1" >"${BATS_TEST_TMPDIR}/s.sh"
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  run "${BATS_REPO_ROOT}/runner_image/entrypoint"
}

@test "an impersonated script reads its own prefix and is denied another's" {
  export RUNNER_IMPERSONATE=a@p.iam.gserviceaccount.com
  # shellcheck source=runner_image/lib/runner.sh
  source "${RUNNER_LIB}"
  run runner_gcs_get state-bkt team-a/in.txt "${BATS_TEST_TMPDIR}/a.txt"
  [ "${status}" -eq 0 ]
  [ "$(cat "${BATS_TEST_TMPDIR}/a.txt")" = "data of team-a/in.txt" ]
  run runner_gcs_get state-bkt team-b/in.txt "${BATS_TEST_TMPDIR}/b.txt"
  [ "${status}" -eq 77 ]
  # Without impersonation the pod's own identity reads neither.
  unset RUNNER_IMPERSONATE
  run runner_gcs_get state-bkt team-a/in.txt "${BATS_TEST_TMPDIR}/a2.txt"
  [ "${status}" -eq 77 ]
}

@test "the minted token is cached in a 0600 file and minted again near its expiry" {
  export RUNNER_IMPERSONATE=a@p.iam.gserviceaccount.com RUNNER_IMPERSONATE_LIFETIME=600
  # shellcheck source=runner_image/lib/runner.sh
  source "${RUNNER_LIB}"
  local dir="${RUNNER_WORKDIR}/.runner/identity" first second
  runner_gcs_get state-bkt team-a/in.txt /dev/null
  first="$(cat "${dir}/token")"
  [[ "${first}" == local-minted-a-* ]]
  [ "$(stat -c %a "${dir}/token")" = 600 ]
  runner_gcs_get state-bkt team-a/in.txt /dev/null
  [ "$(cat "${dir}/token")" = "${first}" ]   # still valid for longer than the margin: reused
  # ...without asking for the pod's own token at all.
  RUNNER_ACCESS_TOKEN_FILE=/nonexistent runner_gcs_get state-bkt team-a/in.txt /dev/null
  RUNNER_TOKEN_REFRESH_MARGIN=700 runner_gcs_get state-bkt team-a/in.txt /dev/null
  second="$(cat "${dir}/token")"
  [ "${second}" != "${first}" ]              # within the margin of its expiry: minted again
  runner_identity_forget
  [ ! -e "${dir}" ]
}

@test "impersonation denied ends the entrypoint with 77 naming the service account and the role" {
  export RUNNER_IMPERSONATE=b@p.iam.gserviceaccount.com
  entry 'echo SHOULD-NOT-RUN'
  [ "${status}" -eq 77 ]
  grep -q 'auth=impersonation-denied service_account=b@p.iam.gserviceaccount.com http=403' <<<"${output}"
  grep -q 'roles/iam.serviceAccountTokenCreator' <<<"${output}"
  grep -Eq 'reason=auth( |$)' <<<"${output}"
  refute_grep 'SHOULD-NOT-RUN'
}

@test "the entrypoint hands gcloud, gsutil and bq the impersonated identity" {
  export RUNNER_IMPERSONATE=a@p.iam.gserviceaccount.com
  entry 'echo "impersonating=${CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT}"'
  [ "${status}" -eq 0 ]
  grep -q '^impersonating=a@p.iam.gserviceaccount.com$' <<<"${output}"
  grep -q 'event=identity .* impersonate=a@p.iam.gserviceaccount.com' <<<"${output}"
}

# A traced script shows a value only where it expands one itself (echo "$X"); a tool that reads the
# variable from its environment (psql reads PGPASSWORD) or the file shows none.
@test "secrets reach the script as a variable and a 0600 file, and never its trace or the log" {
  export RUNNER_IMPERSONATE=a@p.iam.gserviceaccount.com
  export RUNNER_SECRETS="projects/p/secrets/a-password/versions/latest:DB_PASSWORD projects/p/secrets/a-password/versions/1:file"
  WANT="$(printf %s hunter2-of-a | md5sum)"
  export WANT
  entry 'set -x
source "${RUNNER_LIB}"
runner_gcs_get state-bkt team-a/in.txt /dev/null
test "$(printenv DB_PASSWORD | tr -d "\n" | md5sum)" = "${WANT}" && echo ENV-OK
test "$(md5sum <"${RUNNER_SECRETS_DIR}/a-password")" = "${WANT}" && echo FILE-OK
stat -c %a "${RUNNER_SECRETS_DIR}/a-password"
echo "secrets dir=${RUNNER_SECRETS_DIR}"'
  [ "${status}" -eq 0 ]
  grep -q '^ENV-OK$' <<<"${output}"
  grep -q '^FILE-OK$' <<<"${output}"
  grep -q '^600$' <<<"${output}"
  grep -q 'secret=loaded name=projects/p/secrets/a-password/versions/latest env=DB_PASSWORD' <<<"${output}"
  refute_grep 'hunter2'
  refute_grep 'aHVudGVyMi1vZi1h'  # nor base64
  # The secret files are gone when the entrypoint ends.
  [ ! -e "${RUNNER_WORKDIR}/.secrets" ]
}

@test "runner_secrets_load traces no value under set -x" {
  export RUNNER_IMPERSONATE=a@p.iam.gserviceaccount.com
  # shellcheck source=runner_image/lib/runner.sh
  source "${RUNNER_LIB}"
  run bash -c 'set -x; source "${RUNNER_LIB}"; runner_secrets_load projects/p/secrets/a-password/versions/latest:PW; echo "len=${#PW}"'
  [ "${status}" -eq 0 ]
  grep -q '^len=12$' <<<"${output}"
  refute_grep 'hunter2'
  refute_grep 'aHVudGVyMi1vZi1h'
}

@test "a secret the script's identity may not read fails the preflight with 77 naming the secret and the role" {
  export RUNNER_IMPERSONATE=a@p.iam.gserviceaccount.com
  export RUNNER_SECRETS="projects/p/secrets/b-password/versions/latest:PW"
  entry 'echo SHOULD-NOT-RUN'
  [ "${status}" -eq 77 ]
  grep -q 'secret=denied name=projects/p/secrets/b-password/versions/latest identity=a@p.iam.gserviceaccount.com http=403' <<<"${output}"
  grep -q 'roles/secretmanager.secretAccessor' <<<"${output}"
  grep -Eq 'reason=secrets( |$)' <<<"${output}"
  refute_grep 'SHOULD-NOT-RUN'
  refute_grep 'hunter2'
}

@test "a secret version that does not exist is a configuration error (64)" {
  export RUNNER_IMPERSONATE=a@p.iam.gserviceaccount.com
  export RUNNER_SECRETS="projects/p/secrets/a-password/versions/7:PW"
  entry 'echo SHOULD-NOT-RUN'
  [ "${status}" -eq 64 ]
  grep -q 'secret=not-found name=projects/p/secrets/a-password/versions/7' <<<"${output}"
}
