# shellcheck shell=bash
# IAM preflight: fail fast, before the script's own work, naming the identity, resource and permission.

_runner_identity() {
  if [[ -n "${RUNNER_IDENTITY:-}" ]]; then
    printf '%s' "${RUNNER_IDENTITY}"
  elif [[ -z "${STORAGE_EMULATOR_HOST:-}" ]]; then
    curl -sf --max-time 3 -H 'Metadata-Flavor: Google' \
      "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/email" || printf 'unknown'
  else
    printf 'unknown'
  fi
}

_runner_require_gcs() {
  local bucket="$1" perm="$2" want tmp code missing role
  case "${perm}" in
    read) want=(storage.objects.get storage.objects.list); role="roles/storage.objectViewer" ;;
    write) want=(storage.objects.create storage.objects.delete); role="roles/storage.objectUser" ;;
    *) runner_log error "require=bad-spec perm=${perm} fix=\"use :read or :write\""; return "${RUNNER_EXIT_CONFIG}" ;;
  esac
  local query="" p
  for p in "${want[@]}"; do query+="&permissions=${p}"; done
  tmp="$(mktemp)"
  code="$(_runner_gcs_curl "${tmp}" "$(_runner_gcs_base)/storage/v1/b/${bucket}/iam/testPermissions?${query#&}")"
  if [[ "${code}" != 200 ]]; then
    runner_log error "require=unavailable resource=gs://${bucket} http=${code} identity=$(_runner_identity)" \
      "fix=\"check the bucket name and that the identity may call testIamPermissions\""
    rm -f "${tmp}"
    return "${RUNNER_EXIT_NOPERM}"
  fi
  missing=""
  for p in "${want[@]}"; do
    jq -e --arg p "${p}" '(.permissions // []) | index($p)' "${tmp}" >/dev/null || missing+="${missing:+,}${p}"
  done
  rm -f "${tmp}"
  if [[ -n "${missing}" ]]; then
    local who
    who="$(_runner_identity)"
    runner_log error "require=denied identity=${who} resource=gs://${bucket} missing=${missing}" \
      "fix=\"grant ${role} on gs://${bucket} to ${who}\""
    return "${RUNNER_EXIT_NOPERM}"
  fi
  runner_log info "require=ok resource=gs://${bucket} perm=${perm}"
}

# runner_require SPEC...
#   SPEC is gs://bucket[/prefix]:read|write or bq:project:dataset:read|write. Checks each with
#   testIamPermissions (GCS) or `bq show` (BigQuery). Returns 0, 77 on a missing permission, 64 on a bad spec.
runner_require() {
  local spec target perm bucket rc=0
  for spec in "$@"; do
    perm="${spec##*:}"
    target="${spec%:*}"
    case "${target}" in
      gs://*)
        bucket="${target#gs://}"
        bucket="${bucket%%/*}"
        _runner_require_gcs "${bucket}" "${perm}" || rc=$?
        ;;
      bq:*)
        if ! command -v bq >/dev/null; then
          runner_log error "require=unsupported resource=${target} reason=\"bq not installed\""
          rc="${RUNNER_EXIT_CONFIG}"
        elif ! bq show --format=none "${target#bq:}" >/dev/null 2>&1; then
          runner_log error "require=denied identity=$(_runner_identity) resource=${target} missing=bigquery.datasets.get" \
            "fix=\"grant roles/bigquery.dataViewer (read) or roles/bigquery.dataEditor (write)\""
          rc="${RUNNER_EXIT_NOPERM}"
        fi
        ;;
      *) runner_log error "require=bad-spec spec=${spec} fix=\"use gs://bucket/prefix:read|write\""; rc="${RUNNER_EXIT_CONFIG}" ;;
    esac
    [[ ${rc} -eq 0 ]] || return "${rc}"
  done
}
