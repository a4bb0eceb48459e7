#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031  # bats runs each test in a subshell
# k8s/setup-identity.sh: the dry run prints every command as a runnable script; a real run (against fake
# gcloud/kubectl that record their argv, as no project or cluster is reachable here) runs the same commands,
# keeps what exists and refuses buckets without uniform access.

setup() {
  SCRIPT="${BATS_TEST_DIRNAME}/../../k8s/setup-identity.sh"
  BIN="${BATS_TEST_TMPDIR}/bin"
  CALLS="${BATS_TEST_TMPDIR}/calls"
  mkdir -p "${BIN}"
  : >"${CALLS}"
  # Each call is one line: the argv joined by a unit separator, so a quoting mistake shows as extra fields.
  for tool in gcloud kubectl; do
    cat >"${BIN}/${tool}" <<'FAKE'
#!/usr/bin/env bash
set -Eeuo pipefail
tool="$(basename "$0")"
(IFS=$'\x1f'; printf '%s\x1f%s\n' "${tool}" "$*") >>"${FAKE_CALLS}"
case "${tool} $*" in
  "gcloud storage buckets describe"*) printf '%s\n' "${FAKE_UNIFORM:-True}" ;;
  "gcloud iam service-accounts describe "*) [[ " ${FAKE_GSAS:-} " == *" $4 "* ]] ;;
  "kubectl get serviceaccount "*) [[ " ${FAKE_KSAS:-} " == *" $3 "* ]] ;;
esac
FAKE
    chmod +x "${BIN}/${tool}"
  done
  export PATH="${BIN}:${PATH}" FAKE_CALLS="${CALLS}"
  OVERLAY_DIR="${BATS_TEST_TMPDIR}/overlay"
  COMPOSER2=(--overlay composer2 --project my-proj --bucket gs://env-bkt --identity loader
    --airflow-sa env-sa@my-proj.iam.gserviceaccount.com --workers-namespace composer-2-airflow-2-abc
    --overlay-dir "${OVERLAY_DIR}")
}

# calls_matching TOOL ARG...: the recorded calls (argv joined by spaces) whose words start with TOOL ARG...
calls_matching() {
  local prefix="$*"
  tr '\037' ' ' <"${CALLS}" | grep -F -- "${prefix}" || true
}

@test "a dry run runs no gcloud or kubectl command and prints a script bash can parse" {
  run bash "${SCRIPT}" "${COMPOSER2[@]}" --dry-run
  [ "$status" -eq 0 ]
  [ ! -s "${CALLS}" ]
  printf '%s\n' "$output" >"${BATS_TEST_TMPDIR}/plan.sh"
  bash -n "${BATS_TEST_TMPDIR}/plan.sh"
}

@test "the printed dry run, when run, passes each condition as one argument" {
  run bash "${SCRIPT}" "${COMPOSER2[@]}" --dry-run
  printf '%s\n' "$output" >"${BATS_TEST_TMPDIR}/plan.sh"
  bash "${BATS_TEST_TMPDIR}/plan.sh"
  run grep -c $'\x1f--condition\x1ftitle=script-runner-pod-state,expression=resource.name.startsWith' "${CALLS}"
  [ "$output" -eq 2 ]  # script-runner and loader
}

@test "composer2 binds each identity by Workload Identity and writes its annotated account into the overlay it applies" {
  run bash "${SCRIPT}" "${COMPOSER2[@]}" --dry-run
  [[ "$output" == *"kubectl apply -k ${OVERLAY_DIR}"* ]]
  [[ "$output" != *"kubectl annotate"* && "$output" != *"kubectl create"* ]]
  for name in script-runner loader; do
    [[ "$output" == *"gcloud iam service-accounts add-iam-policy-binding ${name}@my-proj.iam.gserviceaccount.com --project my-proj --role roles/iam.workloadIdentityUser --member 'serviceAccount:my-proj.svc.id.goog[script-runner/${name}]'"* ]]
    grep -qx "    iam.gke.io/gcp-service-account: ${name}@my-proj.iam.gserviceaccount.com" "${OVERLAY_DIR}/serviceaccount-${name}.yaml"
    grep -qx "automountServiceAccountToken: false" "${OVERLAY_DIR}/serviceaccount-${name}.yaml"
  done
  [[ "$output" != *serviceAccountTokenCreator* ]]
}

@test "pods may write only the three pod prefixes (no done-markers) and read only the scripts" {
  run bash "${SCRIPT}" "${COMPOSER2[@]}" --state-root sr --dry-run
  pod_user="$(grep -F 'member serviceAccount:loader@' <<<"$output" | grep -F roles/storage.objectUser)"
  for prefix in state once events; do
    [[ "$pod_user" == *"startsWith(\"projects/_/buckets/env-bkt/objects/sr/${prefix}/\")"* ]]
  done
  for prefix in cache ledger reports sizing "done"; do
    [[ "$pod_user" != *"/sr/${prefix}/"* ]]
  done
  pod_viewer="$(grep -F 'member serviceAccount:loader@' <<<"$output" | grep -F roles/storage.objectViewer)"
  [[ "$pod_viewer" == *'resource.type == "storage.googleapis.com/Bucket" || resource.name.startsWith("projects/_/buckets/env-bkt/objects/data/")'* ]]
}

@test "the Airflow identity writes the cache, ledger, reports and sizing history and nothing a pod writes" {
  run bash "${SCRIPT}" "${COMPOSER2[@]}" --state-bucket gs://state-bkt --dry-run
  airflow_user="$(grep -F 'member serviceAccount:env-sa@' <<<"$output" | grep -F roles/storage.objectUser)"
  [[ "$airflow_user" == "gcloud storage buckets add-iam-policy-binding gs://state-bkt "* ]]
  for prefix in cache ledger reports sizing; do
    [[ "$airflow_user" == *"buckets/state-bkt/objects/script-runner/${prefix}/"* ]]
  done
  for prefix in state once events "done"; do
    [[ "$airflow_user" != *"/script-runner/${prefix}/"* ]]
  done
  # The pods read the scripts in the environment bucket and write their state in the state bucket.
  [[ "$output" == *"add-iam-policy-binding gs://env-bkt --project my-proj --member serviceAccount:loader@my-proj.iam.gserviceaccount.com --role roles/storage.objectViewer"* ]]
  [[ "$output" == *"add-iam-policy-binding gs://state-bkt --project my-proj --member serviceAccount:loader@my-proj.iam.gserviceaccount.com --role roles/storage.objectUser"* ]]
}

@test "composer3 lets the environment's service account impersonate each identity and touches no cluster" {
  run bash "${SCRIPT}" --overlay composer3 --project my-proj --bucket env-bkt --identity reader \
    --identity writer=w-sa@other-proj.iam.gserviceaccount.com --environment-sa env-sa@my-proj.iam.gserviceaccount.com --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"gcloud iam service-accounts add-iam-policy-binding reader@my-proj.iam.gserviceaccount.com --project my-proj --role roles/iam.serviceAccountTokenCreator --member serviceAccount:env-sa@my-proj.iam.gserviceaccount.com"* ]]
  [[ "$output" == *"add-iam-policy-binding w-sa@other-proj.iam.gserviceaccount.com --project my-proj --role roles/iam.serviceAccountTokenCreator"* ]]
  [[ "$output" == *"gcloud iam service-accounts create reader "* ]]
  [[ "$output" != *"create writer"* ]]  # an explicit email is yours to manage
  [[ "$output" != *kubectl* ]]
  [[ "$output" != *workloadIdentityUser* ]]
}

@test "composer3 without the environment's service account is refused with the fix" {
  run bash "${SCRIPT}" --overlay composer3 --project my-proj --bucket env-bkt --identity reader --dry-run
  [ "$status" -eq 64 ]
  [[ "$output" == *"composer3 needs --environment-sa"* ]]
}

@test "bad arguments are refused before any command runs" {
  run bash "${SCRIPT}" --overlay kind --project my-proj --bucket b-1 --dry-run
  [ "$status" -eq 64 ]
  [[ "$output" == *"--overlay must be composer2, gke or composer3"* ]]
  run bash "${SCRIPT}" --overlay gke --project My_Proj --bucket b-1
  [ "$status" -eq 64 ]
  run bash "${SCRIPT}" --overlay gke --project my-proj --bucket b-1 --identity abc
  [ "$status" -eq 64 ]
  [[ "$output" == *"identity 'abc': a service account id has 6-30 characters"* ]]
  [ "$(calls_matching gcloud iam)" = "" ]
}

@test "a real run keeps existing accounts and creates the missing ones" {
  FAKE_GSAS="script-runner@my-proj.iam.gserviceaccount.com" FAKE_KSAS="script-runner" \
    run bash "${SCRIPT}" "${COMPOSER2[@]}"
  [ "$status" -eq 0 ]
  [ "$(calls_matching gcloud iam service-accounts create script-runner)" = "" ]
  [ -n "$(calls_matching gcloud iam service-accounts create loader --project my-proj)" ]
  [ "$(calls_matching kubectl)" = "kubectl apply -k ${OVERLAY_DIR}" ]  # create or update: safe to repeat
  [ "$(calls_matching gcloud storage buckets add-iam-policy-binding | wc -l)" -eq 6 ]
}

@test "a real run refuses a bucket without uniform bucket-level access before granting anything" {
  FAKE_UNIFORM=False run bash "${SCRIPT}" "${COMPOSER2[@]}"
  [ "$status" -eq 64 ]
  [[ "$output" == *"gs://env-bkt has no uniform bucket-level access"* ]]
  [ "$(calls_matching add-iam-policy-binding)" = "" ]
}

@test "--help prints the usage block and none of the script's code" {
  run bash "${SCRIPT}" --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"Usage: k8s/setup-identity.sh --overlay composer2|gke|composer3"* ]]
  [[ "${lines[-1]}" == "bindings are added, existing accounts are kept, the overlay is applied again." ]]
  [[ "$output" != *"set -Eeuo"* ]]
}

@test "the printed dry run, run after a first setup, creates no account that exists (no AlreadyExists)" {
  run bash "${SCRIPT}" "${COMPOSER2[@]}" --dry-run
  printf '%s\n' "$output" >"${BATS_TEST_TMPDIR}/plan.sh"
  FAKE_GSAS="script-runner@my-proj.iam.gserviceaccount.com loader@my-proj.iam.gserviceaccount.com" \
    run bash -e "${BATS_TEST_TMPDIR}/plan.sh"
  [ "$status" -eq 0 ]
  [ "$(calls_matching gcloud iam service-accounts create)" = "" ]
  [ "$(calls_matching kubectl create)" = "" ]
  [ -n "$(calls_matching kubectl apply -k "${OVERLAY_DIR}")" ]
}
