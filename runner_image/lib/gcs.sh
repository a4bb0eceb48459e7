# shellcheck shell=bash
# GCS through its JSON API with curl + jq: works against GCS (Workload Identity token from the metadata
# server) and the local emulator (STORAGE_EMULATOR_HOST, optional RUNNER_ACCESS_TOKEN_FILE).

_runner_gcs_base() {
  printf '%s' "${STORAGE_EMULATOR_HOST:-https://storage.googleapis.com}"
}

_runner_urlencode() {
  jq -rn --arg s "$1" '$s|@uri'
}

# Print the curl arguments for auth (one per line), nothing when none is needed.
_runner_gcs_auth() {
  local token=""
  if [[ -n "${RUNNER_ACCESS_TOKEN_FILE:-}" ]]; then
    token="$(<"${RUNNER_ACCESS_TOKEN_FILE}")"
  elif [[ -z "${STORAGE_EMULATOR_HOST:-}" ]]; then
    token="$(curl -sf --max-time 5 -H 'Metadata-Flavor: Google' \
      "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token" |
      jq -r .access_token)" || return "${RUNNER_EXIT_TEMPFAIL}"
  fi
  if [[ -n "${token}" ]]; then
    printf '%s\n%s\n' "-H" "Authorization: Bearer ${token}"
  fi
}

# _runner_gcs_curl OUTFILE CURL-ARGS... : run curl with auth; prints the HTTP status, body to OUTFILE.
_runner_gcs_curl() {
  local out="$1"
  shift
  local -a auth=()
  local line code
  while IFS= read -r line; do auth+=("${line}"); done < <(_runner_gcs_auth)
  # On a connection failure curl itself writes 000 and fails: print that once.
  code="$(curl -sS --max-time "${RUNNER_GCS_TIMEOUT:-60}" -o "${out}" -w '%{http_code}' "${auth[@]}" "$@")" || true
  printf '%s' "${code:-000}"
}

# runner_gcs_get BUCKET OBJECT DEST [GENERATION]
#   Download an object (a pinned generation when given) to DEST.
#   Returns 0, 1 when absent (404), 75 on any other error.
runner_gcs_get() {
  local bucket="$1" object="$2" dest="$3" generation="${4:-}" url code
  url="$(_runner_gcs_base)/storage/v1/b/${bucket}/o/$(_runner_urlencode "${object}")?alt=media"
  [[ -z "${generation}" ]] || url+="&generation=${generation}"
  code="$(_runner_gcs_curl "${dest}" "${url}")"
  case "${code}" in
    200) return 0 ;;
    404) return 1 ;;
    *) runner_log warn "gcs=get object=gs://${bucket}/${object} http=${code}"; return "${RUNNER_EXIT_TEMPFAIL}" ;;
  esac
}

# runner_gcs_stat BUCKET OBJECT
#   Print the object's metadata JSON. Returns 0, 1 when absent, 75 on other errors.
runner_gcs_stat() {
  local bucket="$1" object="$2" tmp code
  tmp="$(mktemp)"
  code="$(_runner_gcs_curl "${tmp}" "$(_runner_gcs_base)/storage/v1/b/${bucket}/o/$(_runner_urlencode "${object}")")"
  case "${code}" in
    200) cat "${tmp}"; rm -f "${tmp}"; return 0 ;;
    404) rm -f "${tmp}"; return 1 ;;
    *) rm -f "${tmp}"; return "${RUNNER_EXIT_TEMPFAIL}" ;;
  esac
}

# runner_gcs_put BUCKET OBJECT SRCFILE [IF_GENERATION_MATCH]
#   Upload SRCFILE. With IF_GENERATION_MATCH (0 = must not exist) the write is conditional: GCS applies the
#   precondition atomically, so of two racing writers exactly one wins. (A multipart upload: the local
#   emulator ignores preconditions on uploadType=media.)
#   Prints the new generation. Returns 0, 2 when the precondition failed (412), 75 on other errors.
runner_gcs_put() {
  local bucket="$1" object="$2" src="$3" match="${4:-}" url tmp body code boundary
  url="$(_runner_gcs_base)/upload/storage/v1/b/${bucket}/o?uploadType=multipart"
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
  code="$(_runner_gcs_curl "${tmp}" -X POST -H "Content-Type: multipart/related; boundary=${boundary}" \
    --data-binary "@${body}" "${url}")"
  rm -f "${body}"
  case "${code}" in
    200) jq -r .generation "${tmp}"; rm -f "${tmp}"; return 0 ;;
    412) rm -f "${tmp}"; return 2 ;;
    *) runner_log warn "gcs=put object=gs://${bucket}/${object} http=${code}"; rm -f "${tmp}"; return "${RUNNER_EXIT_TEMPFAIL}" ;;
  esac
}

# runner_gcs_delete BUCKET OBJECT
#   Delete an object. Returns 0 (also when already absent), 75 on errors.
runner_gcs_delete() {
  local bucket="$1" object="$2" code
  code="$(_runner_gcs_curl /dev/null -X DELETE "$(_runner_gcs_base)/storage/v1/b/${bucket}/o/$(_runner_urlencode "${object}")")"
  case "${code}" in
    200 | 204 | 404) return 0 ;;
    *) return "${RUNNER_EXIT_TEMPFAIL}" ;;
  esac
}
