# shellcheck shell=bash
# IAM preflight: fail fast, before the script's own work, naming the identity, resource and permission.

# _runner_identity: the Google identity GCS and BigQuery see, for messages: RUNNER_IMPERSONATE (the service
#   account the script impersonates), else the metadata server's email for
#   the pod's account (what a grant names), else RUNNER_IDENTITY (the Kubernetes service account the plan
#   chose, or a test's stand-in), else "unknown".
_runner_identity() {
  local email=""
  if [[ -n "${RUNNER_IMPERSONATE:-}" ]]; then
    printf '%s' "${RUNNER_IMPERSONATE}"
    return 0
  fi
  if [[ -z "${RUNNER_ACCESS_TOKEN_FILE:-}" && (-z "${STORAGE_EMULATOR_HOST:-}" || -n "${GCE_METADATA_HOST:-}") ]]; then
    email="$(curl -sf --max-time 3 -H 'Metadata-Flavor: Google' \
      "http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance/service-accounts/default/email" \
      2>/dev/null)" || email=""
  fi
  if [[ -n "${email}" && "${email}" != *[[:space:]\"]* ]]; then
    printf '%s' "${email}"
  else
    printf '%s' "${RUNNER_IDENTITY:-unknown}"
  fi
}

_runner_require_gcs() {
  local bucket="$1" perm="$2" want tmp code missing role
  case "${perm}" in
    read) want=(storage.objects.get storage.objects.list); role="roles/storage.objectViewer" ;;
    write) want=(storage.objects.create storage.objects.delete); role="roles/storage.objectUser" ;;
    *) runner_log error "require=bad-spec perm=${perm} fix=\"use :read or :write\""; return "${RUNNER_EXIT_CONFIG}" ;;
  esac
  local query="" p rc=0 base
  for p in "${want[@]}"; do query+="&permissions=${p}"; done
  tmp="$(mktemp)"
  _runner_gcs_base base
  _runner_gcs_retry _runner_gcs_request "${tmp}" "${base}/storage/v1/b/${bucket}/iam/testPermissions?${query#&}" || rc=$?
  code="${_RUNNER_HTTP}"
  if [[ ${rc} -eq ${RUNNER_EXIT_TEMPFAIL} ]]; then
    rm -f "${tmp}"
    runner_log error "require=unavailable resource=gs://${bucket} http=${code} identity=$(_runner_identity) temporary=true" \
      "reason=\"no answer from GCS after retries\""
    return "${RUNNER_EXIT_TEMPFAIL}"
  elif [[ ${rc} -ne 0 ]]; then
    rm -f "${tmp}"
    return "${rc}"  # no token: logged by the token fetch
  fi
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

# BigQuery REST API base (https://bigquery.googleapis.com); tests point RUNNER_BQ_API_BASE at a local stub.
_runner_bq_base() {
  printf '%s' "${RUNNER_BQ_API_BASE:-https://bigquery.googleapis.com}"
}

# _runner_bq_error_line OUTPUT: bq's error as one loggable line: the "BigQuery error in …" paragraph (bq
#   wraps long messages), else the first paragraph; double quotes made single, cut at 300 characters.
_runner_bq_error_line() {
  local msg
  msg="$(awk '
    function flush() {
      if (cur != "") {
        if (first == "") first = cur
        if (hit == "" && cur ~ /^BigQuery error in /) hit = cur
      }
      cur = ""
    }
    NF == 0 || /^BigQuery error in / { flush() }
    NF > 0 { cur = (cur == "" ? $0 : cur " " $0) }
    END { flush(); print (hit != "" ? hit : first) }' <<<"$1")"
  msg="${msg//\"/\'}"
  printf '%s' "${msg:0:300}"
}

# _runner_bq_granted PROJECT DATASET TABLE OUTFILE PERMISSION...: ask tables.testIamPermissions which of the
#   permissions the caller holds on the table (auth as for GCS: token file or metadata server; transient
#   answers retried). Writes the held permissions to OUTFILE, one a line; _RUNNER_HTTP holds the status.
#   Returns 0 on a 200 with a JSON object, 75 when BigQuery did not answer (no answer, 429, 5xx), the token
#   failure's code, else 1.
_runner_bq_granted() {
  local project="$1" dataset="$2" table="$3" out="$4" url body tmp rc=0
  shift 4
  url="$(_runner_bq_base)/bigquery/v2/projects/$(_runner_urlencode "${project}")/datasets/$(_runner_urlencode "${dataset}")"
  url+="/tables/$(_runner_urlencode "${table}"):testIamPermissions"
  body="$(jq -cn '{permissions: $ARGS.positional}' --args "$@")"
  tmp="$(mktemp)"
  _runner_gcs_retry _runner_gcs_request "${tmp}" -X POST -H 'Content-Type: application/json' --data "${body}" "${url}" || rc=$?
  if [[ ${rc} -eq 0 ]]; then
    if [[ "${_RUNNER_HTTP}" == 200 ]] && jq -e 'type == "object"' "${tmp}" >/dev/null 2>&1; then
      jq -r '(.permissions // [])[]' "${tmp}" >"${out}"
    else
      rc=1
    fi
  fi
  rm -f "${tmp}"
  return "${rc}"
}

# _runner_require_bq TARGET PERM: TARGET is bq:PROJECT:DATASET[.TABLE] (PROJECT may itself hold a colon,
#   as domain-scoped projects do). `bq show` proves the dataset or table is visible
#   (bigquery.datasets.get / bigquery.tables.get); for a table, tables.testIamPermissions then checks
#   bigquery.tables.getData (read) or bigquery.tables.updateData (write). A dataset's read or write is not
#   checked (testIamPermissions needs a table): the ok line says that only visibility was.
#   Returns 0; 64 bad spec, bq missing, or a resource that does not exist (BigQuery answered "Not found");
#   77 access denied; 75 a check that could not be made now (bq failed otherwise, BigQuery did not answer).
_runner_require_bq() {
  local target="$1" perm="$2" rest project dsref dataset table="" kind ref role getperm want out code=0 who
  rest="${target#bq:}"
  project="${rest%:*}"
  dsref="${rest##*:}"
  dataset="${dsref%%.*}"
  [[ "${dsref}" != *.* ]] || table="${dsref#*.}"
  if [[ "${rest}" != *:* || -z "${project}" || ! "${dataset}" =~ ^[A-Za-z0-9_]+$ ||
    ("${dsref}" == *.* && -z "${table}") ]]; then
    runner_log error "require=bad-spec spec=${target}:${perm} fix=\"use bq:PROJECT:DATASET[.TABLE]:read|write\""
    return "${RUNNER_EXIT_CONFIG}"
  fi
  case "${perm}" in
    read) role="roles/bigquery.dataViewer"; want="bigquery.tables.getData" ;;
    write) role="roles/bigquery.dataEditor"; want="bigquery.tables.updateData" ;;
    *) runner_log error "require=bad-spec spec=${target}:${perm} fix=\"use :read or :write\""; return "${RUNNER_EXIT_CONFIG}" ;;
  esac
  if ! command -v bq >/dev/null; then
    runner_log error "require=unsupported resource=${target} reason=\"bq not installed\""
    return "${RUNNER_EXIT_CONFIG}"
  fi
  ref="${project}:${dsref}"
  kind=dataset getperm=bigquery.datasets.get
  [[ -z "${table}" ]] || kind=table getperm=bigquery.tables.get
  out="$(bq show --format=prettyjson "${ref}" 2>&1)" || code=$?
  if [[ ${code} -ne 0 ]]; then
    if grep -qiE 'not found: (dataset|table|project)' <<<"${out}"; then
      local hint=""
      [[ -z "${table}" || "${perm}" != write ]] || hint=" (a script that creates the table can require bq:${project}:${dataset}:write)"
      runner_log error "require=missing resource=${target} ${kind}=${ref} error=\"$(_runner_bq_error_line "${out}")\"" \
        "fix=\"create the ${kind} or fix the name${hint}\""
      return "${RUNNER_EXIT_CONFIG}"
    fi
    who="$(_runner_identity)"
    if grep -qiE 'access denied|permission .*denied|does not have .*permission|(^|[^0-9])403([^0-9]|$)' <<<"${out}"; then
      runner_log error "require=denied identity=${who} resource=${target} missing=${getperm}" \
        "fix=\"grant ${role} on ${kind} ${ref} to ${who}\"" \
        "note=\"BigQuery answers the same when the ${kind} does not exist in a project the identity cannot see\""
      return "${RUNNER_EXIT_NOPERM}"
    fi
    runner_log error "require=unavailable resource=${target} identity=${who} bq-exit=${code} temporary=true" \
      "error=\"$(_runner_bq_error_line "${out}")\" fix=\"see bq's error; check bq's credentials and the project\""
    return "${RUNNER_EXIT_TEMPFAIL}"
  fi
  if [[ -z "${table}" ]]; then
    runner_log info "require=ok resource=${target} perm=${perm} checked=${getperm}" \
      "note=\"dataset ${perm} not checkable; table-level ${perm} is (bq:${project}:${dataset}.TABLE:${perm})\""
    return 0
  fi
  local held rc=0
  held="$(mktemp)"
  _runner_bq_granted "${project}" "${dataset}" "${table}" "${held}" "${want}" || rc=$?
  if [[ ${rc} -ne 0 ]]; then
    rm -f "${held}"
    case "${rc}" in
      1) rc="${RUNNER_EXIT_NOPERM}" ;;
      "${RUNNER_EXIT_TEMPFAIL}") ;;
      *) return "${rc}" ;;  # no token: logged by the token fetch
    esac
    runner_log error "require=unavailable resource=${target} identity=$(_runner_identity) http=${_RUNNER_HTTP} check=testIamPermissions" \
      "temporary=$([[ ${rc} -eq ${RUNNER_EXIT_TEMPFAIL} ]] && echo true || echo false)" \
      "fix=\"check that the identity can reach the BigQuery API at $(_runner_bq_base)\""
    return "${rc}"
  fi
  if ! grep -qxF "${want}" "${held}"; then
    rm -f "${held}"
    who="$(_runner_identity)"
    runner_log error "require=denied identity=${who} resource=${target} missing=${want}" \
      "fix=\"grant ${role} on table ${ref} (or its dataset) to ${who}\""
    return "${RUNNER_EXIT_NOPERM}"
  fi
  rm -f "${held}"
  runner_log info "require=ok resource=${target} perm=${perm} checked=${getperm},${want}"
}

# runner_require SPEC...
#   SPEC is gs://bucket[/prefix]:read|write or bq:PROJECT:DATASET[.TABLE]:read|write.
#   GCS: bucket-level testIamPermissions for storage.objects.get+list (read) or create+delete (write).
#   BigQuery: see _runner_require_bq (visibility through `bq show`; table read/write through
#   tables.testIamPermissions; a dataset's read/write is logged as not checkable).
#   Outputs: one require= line per spec. Stops at the first failing spec and returns its code:
#   0; 77 permission denied, or refused (401/403/404 from testIamPermissions, no identity); 75 unavailable
#   (no answer, 429 or 5xx after retries, the metadata server down, bq failing otherwise): temporary;
#   64 bad spec or (BigQuery) a resource that does not exist.
runner_require() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local rc=0
  _runner_require "$@" || rc=$?
  { _runner_xt_restore "${rc}"; } 2>/dev/null
}

_runner_require() {
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
      bq:*) _runner_require_bq "${target}" "${perm}" || rc=$? ;;
      *) runner_log error "require=bad-spec spec=${spec} fix=\"use gs://bucket/prefix:read|write or bq:PROJECT:DATASET[.TABLE]:read|write\""; rc="${RUNNER_EXIT_CONFIG}" ;;
    esac
    [[ ${rc} -eq 0 ]] || return "${rc}"
  done
}
