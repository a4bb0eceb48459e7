# shellcheck shell=bash
# GCS through its JSON API with curl + jq: works against GCS (Workload Identity token from the metadata
# server) and the local stack (STORAGE_EMULATOR_HOST naming its IAM front, the token from the Kubernetes
# double's metadata server, as on GKE). RUNNER_ACCESS_TOKEN_FILE, a token file used instead of the metadata
# server, is for debugging and the bats tests only: nothing sets it in a pod.
#
# The bearer token never reaches a command line (curl reads the header from a config on stdin) nor a trace
# (every function here runs with xtrace off). Transient answers (no answer, 408, 429, 5xx) are retried with
# backoff (RUNNER_GCS_ATTEMPTS, default 5) and then reported as 75, never as "absent"; 401/403 are 77.

# _runner_gcs_base VAR: set VAR to the GCS API base URL (STORAGE_EMULATOR_HOST, else Google's). No fork.
_runner_gcs_base() {
  printf -v "$1" '%s' "${STORAGE_EMULATOR_HOST:-https://storage.googleapis.com}"
}

# _runner_urlencode_to VAR STRING: set VAR to STRING percent-encoded exactly as the image's jq (1.6) `@uri`
#   does, without a fork: each byte (UTF-8 bytes one by one) becomes %XX in uppercase hex, except the
#   characters jq 1.6 keeps, A-Z a-z 0-9 - _ . ~ ! * ' ( ) (jq 1.7 and later encode !*'() too, RFC 3986). Only
#   an invalid UTF-8 string differs (jq would first replace its bad bytes with U+FFFD): GCS object names are
#   valid UTF-8. Returns 0.
_runner_urlencode_to() {
  local LC_ALL=C
  local _ue_in="$2" _ue_out="" _ue_c _ue_i
  if [[ "${_ue_in}" == *[!A-Za-z0-9._~\!*\'\(\)-]* ]]; then
    for ((_ue_i = 0; _ue_i < ${#_ue_in}; _ue_i++)); do
      _ue_c="${_ue_in:_ue_i:1}"
      case "${_ue_c}" in
        [A-Za-z0-9._~\!*\'\(\)-]) _ue_out+="${_ue_c}" ;;
        *) printf -v _ue_c '%%%02X' "'${_ue_c}" && _ue_out+="${_ue_c}" ;;
      esac
    done
  else
    _ue_out="${_ue_in}"
  fi
  printf -v "$1" '%s' "${_ue_out}"
}

# _runner_urlencode STRING: print STRING percent-encoded (_runner_urlencode_to), for $(...) callers.
_runner_urlencode() {
  local encoded
  _runner_urlencode_to encoded "$1"
  printf '%s\n' "${encoded}"
}

# _runner_gcs_token: set the caller's local _RUNNER_TOKEN to the token every call uses: the pod's own
#   (_runner_pod_token), or with RUNNER_IMPERSONATE the one minted from it for that Google service account
#   (identity.sh). Returns 0, 77 (no identity, impersonation denied) or 75 (unavailable), logged.
_runner_gcs_token() {
  if [[ -n "${RUNNER_IMPERSONATE:-}" ]] && _runner_identity_cached; then
    return 0  # a minted token with time left: the pod's own is not needed
  fi
  _runner_pod_token || return $?
  [[ -z "${RUNNER_IMPERSONATE:-}" ]] || _runner_identity_token
}

# _runner_pod_token: set the caller's local _RUNNER_TOKEN ("" when no auth is needed: an emulator without a
#   token file). The token comes from RUNNER_ACCESS_TOKEN_FILE, else the metadata server (GCE_METADATA_HOST,
#   default metadata.google.internal; with an emulator only when GCE_METADATA_HOST is set). A metadata
#   token is kept in this shell (not exported, so not in the script's environment) while it has more than
#   RUNNER_TOKEN_REFRESH_MARGIN (300) seconds left: the entrypoint's calls before the script (auth check,
#   fetch, done-marker check) and its done-marker write ask the metadata server once, not four times.
#   Returns 0; 77 when the identity is not configured or denied (no token file, 403/404 from the metadata
#   server: no Google service account bound); 75 when the metadata server is unavailable. Logs the reason.
_runner_pod_token() {
  local host answer code body expires=""
  _RUNNER_TOKEN=""
  if [[ -n "${_RUNNER_POD_TOKEN:-}" ]] &&
    ((_RUNNER_POD_TOKEN_UNTIL - EPOCHSECONDS > ${RUNNER_TOKEN_REFRESH_MARGIN:-300})); then
    _RUNNER_TOKEN="${_RUNNER_POD_TOKEN}"
    return 0
  fi
  if [[ -n "${RUNNER_ACCESS_TOKEN_FILE:-}" ]]; then
    if [[ -r "${RUNNER_ACCESS_TOKEN_FILE}" ]]; then
      _RUNNER_TOKEN="$(tr -d ' \r\n' <"${RUNNER_ACCESS_TOKEN_FILE}")"
    fi
    if [[ -z "${_RUNNER_TOKEN}" || "${_RUNNER_TOKEN}" == *[\"\\]* ]]; then
      _RUNNER_TOKEN=""
      runner_log error "auth=failed source=token-file file=${RUNNER_ACCESS_TOKEN_FILE} reason=\"unreadable, empty or not a token\""
      return "${RUNNER_EXIT_NOPERM}"
    fi
    return 0
  fi
  [[ -z "${STORAGE_EMULATOR_HOST:-}" || -n "${GCE_METADATA_HOST:-}" ]] || return 0
  host="${GCE_METADATA_HOST:-metadata.google.internal}"
  # The answer stays in this shell (no file): its body, a newline, then the HTTP status curl writes after it.
  answer="$(curl -s --max-time 5 -H 'Metadata-Flavor: Google' -w '\n%{http_code}' \
    "http://${host}/computeMetadata/v1/instance/service-accounts/default/token" 2>/dev/null)" || true
  code="${answer##*$'\n'}"
  body=""
  [[ "${answer}" != *$'\n'* ]] || body="${answer%$'\n'*}"
  code="${code:-000}"
  if [[ "${code}" == 200 ]]; then
    _runner_metadata_token_parse body
  fi
  if [[ -n "${_RUNNER_TOKEN}" && "${_RUNNER_TOKEN}" != *[\"\\]* ]]; then
    _RUNNER_POD_TOKEN=""
    if [[ "${expires}" =~ ^[0-9]+$ ]]; then
      _RUNNER_POD_TOKEN="${_RUNNER_TOKEN}"
      _RUNNER_POD_TOKEN_UNTIL=$((EPOCHSECONDS + expires))
    fi
    return 0
  fi
  _runner_answer_excerpt body
  _RUNNER_TOKEN=""
  case "${code}" in
    403 | 404)
      runner_log error "auth=failed source=metadata http=${code} answer=\"${body}\"" \
        "reason=\"the pod's identity has no usable Google service account\"" \
        "fix=\"bind the Kubernetes service account to a Google service account (Workload Identity) and allow it\""
      return "${RUNNER_EXIT_NOPERM}"
      ;;
    *)
      runner_log error "auth=failed source=metadata http=${code} answer=\"${body}\" reason=\"metadata server unavailable\""
      return "${RUNNER_EXIT_TEMPFAIL}"
      ;;
  esac
}

# _runner_gcs_request OUTFILE CURL-ARGS...: one authenticated request, body to OUTFILE. Sets _RUNNER_HTTP to
#   the HTTP status (000: no answer). Returns 0 for an answer that is not transient, 75 for a transient one
#   (000, 408, 429, 5xx), or the token failure's code (75/77).
_runner_gcs_request() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local out="$1" rc=0 _RUNNER_TOKEN=""
  shift
  _RUNNER_HTTP=000
  _runner_gcs_token || rc=$?
  if [[ ${rc} -eq 0 ]]; then
    if [[ -n "${_RUNNER_TOKEN}" ]]; then
      _RUNNER_HTTP="$(curl -sS --max-time "${RUNNER_GCS_TIMEOUT:-60}" -o "${out}" -w '%{http_code}' -K - "$@" \
        <<<"header = \"Authorization: Bearer ${_RUNNER_TOKEN}\"")" || true
    else
      _RUNNER_HTTP="$(curl -sS --max-time "${RUNNER_GCS_TIMEOUT:-60}" -o "${out}" -w '%{http_code}' "$@")" || true
    fi
    _RUNNER_HTTP="${_RUNNER_HTTP:-000}"
    [[ "${_RUNNER_HTTP}" != 401 ]] || _RUNNER_POD_TOKEN=""  # a kept token that no longer works: ask again
    case "${_RUNNER_HTTP}" in
      000 | 408 | 429 | 5??) rc="${RUNNER_EXIT_TEMPFAIL}" ;;
    esac
  fi
  { _runner_xt_restore "${rc}"; } 2>/dev/null
}

# _runner_gcs_retry CMD...: run CMD (a GCS call); while it returns 75 retry it, up to RUNNER_GCS_ATTEMPTS
#   attempts (default 5), sleeping a random time in [0, min(8, 2^k)] s between them (RUNNER_SLEEP, as
#   runner_retry). Logs each retry on stderr. Returns CMD's last code.
_runner_gcs_retry() {
  local attempt=1 attempts="${RUNNER_GCS_ATTEMPTS:-5}" code cap delay
  while true; do
    code=0
    "$@" || code=$?
    [[ ${code} -eq ${RUNNER_EXIT_TEMPFAIL} && ${attempt} -lt ${attempts} ]] || return "${code}"
    cap=$((1 << (attempt - 1)))
    ((cap <= 8)) || cap=8
    delay="$(awk -v c="${cap}" -v r="${RANDOM}" 'BEGIN { printf "%.3f", c * r / 32767 }')"
    runner_log warn "gcs=retry attempt=${attempt} http=${_RUNNER_HTTP:-} call=${1#_runner_} sleep=${delay}"
    ${RUNNER_SLEEP:-sleep} "${delay}"
    attempt=$((attempt + 1))
  done
}

# _runner_gcs_verdict VERB OBJECT RC: map a finished request (RC from _runner_gcs_retry, _RUNNER_HTTP) to a
#   return code: 0 for 200, 1 for 404, 2 for 412, 77 for 401/403 or a token denied, 75 otherwise (logged).
_runner_gcs_verdict() {
  local verb="$1" object="$2" rc="$3"
  if [[ ${rc} -eq ${RUNNER_EXIT_TEMPFAIL} ]]; then
    runner_log warn "gcs=${verb} object=${object} http=${_RUNNER_HTTP:-000} reason=unavailable"
  fi
  [[ ${rc} -eq 0 ]] || return "${rc}"  # a token failure is logged where it happened
  case "${_RUNNER_HTTP}" in
    200 | 204) return 0 ;;
    404) return 1 ;;
    412) return 2 ;;
    401 | 403)
      runner_log warn "gcs=${verb} object=${object} http=${_RUNNER_HTTP} reason=denied"
      return "${RUNNER_EXIT_NOPERM}"
      ;;
    *)
      runner_log warn "gcs=${verb} object=${object} http=${_RUNNER_HTTP}"
      return "${RUNNER_EXIT_TEMPFAIL}"
      ;;
  esac
}

# _runner_gcs_object_url VAR BUCKET OBJECT: set VAR to OBJECT's JSON API URL in BUCKET. No fork.
_runner_gcs_object_url() {
  local _ou_base _ou_object
  _runner_gcs_base _ou_base
  _runner_urlencode_to _ou_object "$3"
  printf -v "$1" '%s/storage/v1/b/%s/o/%s' "${_ou_base}" "$2" "${_ou_object}"
}

# runner_gcs_get BUCKET OBJECT DEST [GENERATION]
#   Download an object (a pinned generation when given) to DEST.
#   Returns 0, 1 when absent (404), 77 when denied, 75 when GCS did not answer after retries.
runner_gcs_get() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local bucket="$1" object="$2" dest="$3" generation="${4:-}" url rc=0
  _runner_gcs_object_url url "${bucket}" "${object}"
  url+="?alt=media"
  [[ -z "${generation}" ]] || url+="&generation=${generation}"
  _runner_gcs_retry _runner_gcs_request "${dest}" "${url}" || rc=$?
  _runner_gcs_verdict get "gs://${bucket}/${object}" "${rc}" || rc=$?
  { _runner_xt_restore "${rc}"; } 2>/dev/null
}

# runner_gcs_stat BUCKET OBJECT
#   Print the object's metadata JSON. Returns 0, 1 when absent, 77 when denied, 75 when unavailable.
runner_gcs_stat() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local bucket="$1" object="$2" tmp url rc=0
  tmp="$(mktemp)"
  _runner_gcs_object_url url "${bucket}" "${object}"
  _runner_gcs_retry _runner_gcs_request "${tmp}" "${url}" || rc=$?
  _runner_gcs_verdict stat "gs://${bucket}/${object}" "${rc}" || rc=$?
  [[ ${rc} -ne 0 ]] || cat "${tmp}"
  rm -f "${tmp}"
  { _runner_xt_restore "${rc}"; } 2>/dev/null
}

# runner_gcs_put BUCKET OBJECT SRCFILE [IF_GENERATION_MATCH]
#   Upload SRCFILE. With IF_GENERATION_MATCH (0 = must not exist) the write is conditional: GCS applies the
#   precondition atomically, so of two racing writers exactly one wins. (A multipart upload: the local
#   emulator ignores preconditions on uploadType=media.)
#   Prints the new generation. Returns 0, 2 when the precondition failed (412), 77 when denied, 75 otherwise.
runner_gcs_put() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local bucket="$1" object="$2" src="$3" match="${4:-}" url tmp body rc=0 boundary
  _runner_gcs_base url
  url+="/upload/storage/v1/b/${bucket}/o?uploadType=multipart"
  [[ -z "${match}" ]] || url+="&ifGenerationMatch=${match}"
  boundary="runner-${RANDOM}${RANDOM}${RANDOM}"
  body="$(mktemp)"
  {
    printf -- '--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n' "${boundary}"
    jq -cn --arg name "${object}" '{name: $name}'
    printf -- '\r\n--%s\r\nContent-Type: application/octet-stream\r\n\r\n' "${boundary}"
    cat "${src}"
    printf -- '\r\n--%s--\r\n' "${boundary}"
  } >"${body}"
  tmp="$(mktemp)"
  _runner_gcs_retry _runner_gcs_request "${tmp}" -X POST -H "Content-Type: multipart/related; boundary=${boundary}" \
    --data-binary "@${body}" "${url}" || rc=$?
  rm -f "${body}"
  _runner_gcs_verdict put "gs://${bucket}/${object}" "${rc}" || rc=$?
  [[ ${rc} -ne 1 ]] || rc="${RUNNER_EXIT_TEMPFAIL}"  # 404: no such bucket
  [[ ${rc} -ne 0 ]] || jq -r .generation "${tmp}"
  rm -f "${tmp}"
  { _runner_xt_restore "${rc}"; } 2>/dev/null
}

# runner_gcs_delete BUCKET OBJECT
#   Delete an object. Returns 0 (also when already absent), 77 when denied, 75 on other errors.
runner_gcs_delete() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local bucket="$1" object="$2" url rc=0
  _runner_gcs_object_url url "${bucket}" "${object}"
  _runner_gcs_retry _runner_gcs_request /dev/null -X DELETE "${url}" || rc=$?
  _runner_gcs_verdict delete "gs://${bucket}/${object}" "${rc}" || rc=$?
  [[ ${rc} -ne 1 ]] || rc=0
  { _runner_xt_restore "${rc}"; } 2>/dev/null
}

# runner_gcs_auth_check
#   Get a token the way every GCS call does (retrying an unavailable metadata server), without using it:
#   the entrypoint calls this once before anything else, so a missing identity fails once, loudly.
#   Returns 0 (also when no auth is needed), 77 identity not configured or denied, 75 metadata unavailable.
runner_gcs_auth_check() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local rc=0
  _runner_gcs_retry _runner_gcs_token_only || rc=$?
  { _runner_xt_restore "${rc}"; } 2>/dev/null
}

_runner_gcs_token_only() {
  local _RUNNER_TOKEN=""
  _RUNNER_HTTP=000
  _runner_gcs_token
}
