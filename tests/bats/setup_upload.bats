#!/usr/bin/env bats
# k8s/setup-upload.sh: the dry run prints the notification, topic and subscription commands; a real run
# keeps what exists. Pub/Sub notifications of a bucket cannot be created against any local emulator, so the
# real-run tests put a recording fake gcloud first on PATH (it answers describe/list as told).

setup() {
  SCRIPT="${BATS_TEST_DIRNAME}/../../k8s/setup-upload.sh"
  FAKE_BIN="${BATS_TEST_TMPDIR}/bin"
  CALLS="${BATS_TEST_TMPDIR}/calls"
  mkdir -p "${FAKE_BIN}"
  : >"${CALLS}"
  export CALLS FAKE_EXISTING="${BATS_TEST_TMPDIR}/existing"
  : >"${FAKE_EXISTING}"
  cat >"${FAKE_BIN}/gcloud" <<'EOF'
#!/usr/bin/env bash
# Records each call; describe/list answer from $FAKE_EXISTING (one "kind name" per line).
printf '%s\n' "$*" >>"${CALLS}"
case "$1 $2 $3" in
  "pubsub topics describe" | "pubsub subscriptions describe")
    grep -qx "$2 $4" "${FAKE_EXISTING}" && printf 'projects/p/%s/%s\n' "$2" "$4" && exit 0
    exit 1 ;;
  "storage buckets notifications")
    if [[ "$4" == list ]]; then
      if grep -q '^notification ' "${FAKE_EXISTING}"; then
        printf '[{"bucket": "b", "notification_configuration": {"topic": "//pubsub.googleapis.com/projects/p/topics/script-runner-uploads", "object_name_prefix": "%s"}}]\n' \
          "$(awk '/^notification /{print $2}' "${FAKE_EXISTING}")"
      else
        echo '[]'
      fi
    fi
    exit 0 ;;
  "storage service-agent --project") echo "service-123@gs-project-accounts.iam.gserviceaccount.com" ;;
esac
exit 0
EOF
  chmod +x "${FAKE_BIN}/gcloud"
}

@test "the dry run prints the notification for uploads under data/, the topic and the subscription" {
  run bash "${SCRIPT}" --project my-proj --bucket gs://my-bucket/ --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"gcloud pubsub topics create script-runner-uploads --project my-proj"* ]]
  [[ "$output" == *"gcloud storage buckets notifications create gs://my-bucket --project my-proj --topic=projects/my-proj/topics/script-runner-uploads --event-types=OBJECT_FINALIZE --object-prefix=data/ --payload-format=json"* ]]
  [[ "$output" == *"gcloud pubsub subscriptions create script-runner-uploads --project my-proj --topic=script-runner-uploads --ack-deadline=120"* ]]
  # shellcheck disable=SC2016 # the dry run prints the command substitution itself
  [[ "$output" == *'--member="serviceAccount:$(gcloud storage service-agent --project my-proj)" --role=roles/pubsub.publisher'* ]]
  [[ "$output" == *"SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION=projects/my-proj/subscriptions/script-runner-uploads"* ]]
}

@test "the dry run runs nothing and is a script bash can parse" {
  PATH="${FAKE_BIN}:${PATH}" run bash "${SCRIPT}" --project p --bucket b --dry-run
  [ "$status" -eq 0 ]
  [ ! -s "${CALLS}" ]
  bash -n <<<"$output"
}

@test "the dry run grants the Airflow identity the subscriber role and names the environment's update" {
  run bash "${SCRIPT}" --project p --bucket b --source-prefix scripts/ --airflow-sa composer@p.iam.gserviceaccount.com \
    --environment env1 --location europe-west1 --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"gcloud pubsub subscriptions add-iam-policy-binding script-runner-uploads --project p --member=serviceAccount:composer@p.iam.gserviceaccount.com --role=roles/pubsub.subscriber"* ]]
  [[ "$output" == *"--object-prefix=scripts/"* ]]
  [[ "$output" == *"gcloud composer environments update env1 --location europe-west1 --project p --update-env-variables=SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION=projects/p/subscriptions/script-runner-uploads"* ]]
}

@test "missing or malformed arguments are refused with exit 64" {
  run bash "${SCRIPT}" --bucket b --dry-run
  [ "$status" -eq 64 ]
  [[ "$output" == *"--project is required"* ]]
  run bash "${SCRIPT}" --project p --bucket b --source-prefix data --dry-run
  [ "$status" -eq 64 ]
  run bash "${SCRIPT}" --project p --bucket b --environment e --dry-run
  [ "$status" -eq 64 ]
  [[ "$output" == *"--location"* ]]
}

@test "a real run creates the topic, the notification and the subscription when none exists" {
  PATH="${FAKE_BIN}:${PATH}" run bash "${SCRIPT}" --project p --bucket b
  [ "$status" -eq 0 ]
  grep -qx "pubsub topics create script-runner-uploads --project p" "${CALLS}"
  grep -q "^pubsub topics add-iam-policy-binding script-runner-uploads --project p --member=serviceAccount:service-123@gs-project-accounts.iam.gserviceaccount.com" "${CALLS}"
  grep -q "^storage buckets notifications create gs://b " "${CALLS}"
  grep -q "^pubsub subscriptions create script-runner-uploads " "${CALLS}"
}

@test "a second run keeps the existing topic, notification and subscription" {
  printf '%s\n' "topics script-runner-uploads" "subscriptions script-runner-uploads" "notification data/" >"${FAKE_EXISTING}"
  PATH="${FAKE_BIN}:${PATH}" run bash "${SCRIPT}" --project p --bucket b
  [ "$status" -eq 0 ]
  [[ "$output" == *"exists: kept"* ]]
  [ "$(grep -c " create " "${CALLS}")" -eq 0 ]
}

@test "a notification of another prefix does not count: the source prefix gets its own" {
  printf '%s\n' "topics script-runner-uploads" "notification other/" >"${FAKE_EXISTING}"
  PATH="${FAKE_BIN}:${PATH}" run bash "${SCRIPT}" --project p --bucket b
  [ "$status" -eq 0 ]
  grep -q "^storage buckets notifications create gs://b .*--object-prefix=data/" "${CALLS}"
  [ "$(grep -c "^pubsub topics create" "${CALLS}")" -eq 0 ]
}

# tools_without_jq: a PATH directory with what the script and the fake gcloud use, and no jq.
tools_without_jq() {
  local dir="${BATS_TEST_TMPDIR}/nojq" tool
  mkdir -p "${dir}"
  for tool in bash env dirname cat grep awk sed; do
    ln -sf "$(command -v "${tool}")" "${dir}/${tool}"
  done
  ln -sf "${FAKE_BIN}/gcloud" "${dir}/gcloud"
  printf '%s' "${dir}"
}

@test "a real run without jq stops before anything runs, naming jq (a re-run would add a duplicate notification)" {
  printf '%s\n' "topics script-runner-uploads" "subscriptions script-runner-uploads" "notification data/" >"${FAKE_EXISTING}"
  PATH="$(tools_without_jq)" run bash "${SCRIPT}" --project p --bucket b
  [ "$status" -eq 64 ]
  [[ "$output" == *"jq is needed"* ]]
  [ ! -s "${CALLS}" ]
}

@test "a run that cannot list the bucket's notifications creates none (it might exist)" {
  printf '%s\n' "topics script-runner-uploads" >"${FAKE_EXISTING}"
  cp "${FAKE_BIN}/gcloud" "${FAKE_BIN}/gcloud-real"
  cat >"${FAKE_BIN}/gcloud" <<'FAKE'
#!/usr/bin/env bash
[[ "$*" == "storage buckets notifications list"* ]] && { printf '%s\n' "$*" >>"${CALLS}"; echo "ERROR: 403" >&2; exit 1; }
exec "$(dirname "$0")/gcloud-real" "$@"
FAKE
  PATH="${FAKE_BIN}:${PATH}" run bash "${SCRIPT}" --project p --bucket b
  [ "$status" -eq 64 ]
  [[ "$output" == *"cannot list the notifications of gs://b"* ]]
  [ "$(grep -c "notifications create" "${CALLS}")" -eq 0 ]
}

@test "the printed dry run, run again after a first setup, creates nothing that exists" {
  run bash "${SCRIPT}" --project p --bucket b --dry-run
  printf '%s\n' "$output" >"${BATS_TEST_TMPDIR}/plan.sh"
  printf '%s\n' "topics script-runner-uploads" "subscriptions script-runner-uploads" "notification data/" >"${FAKE_EXISTING}"
  PATH="${FAKE_BIN}:${PATH}" run bash -e "${BATS_TEST_TMPDIR}/plan.sh"
  [ "$status" -eq 0 ]
  [ "$(grep -c " create " "${CALLS}")" -eq 0 ]
  grep -q "^pubsub topics describe script-runner-uploads --project p" "${CALLS}"
}
