# shellcheck shell=bash
# Per-script secrets from Secret Manager, read with the script's own identity (after impersonation when
# RUNNER_IMPERSONATE is set) before the script starts. RUNNER_SECRETS (set by the pod spec from the
# script's secret= directives) lists "projects/P/secrets/S/versions/V:TARGET" words: TARGET is an
# environment variable to export, or "file" for a 0600 file $RUNNER_SECRETS_DIR/S.
#   GET {secretmanager}/v1/projects/P/secrets/S/versions/V:access
# The API base is CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER (gcloud's own override; the local IAM front
# locally), else https://secretmanager.googleapis.com/. Values never reach argv, a log line or a trace
# (these functions run with xtrace off); the answer is decoded from a 0600 file that is removed at once.

readonly RUNNER_ROLE_SECRET_ACCESSOR="roles/secretmanager.secretAccessor"

_runner_secretmanager_base() {
  local base="${CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER:-https://secretmanager.googleapis.com/}"
  printf '%s' "${base%/}"
}

# runner_secrets_load [SPEC...]
#   Read every secret (default: the words of RUNNER_SECRETS) and export it, or write it to its file in
#   RUNNER_SECRETS_DIR (default ${RUNNER_WORKDIR}/.secrets, created 0700, exported). Stops at the first
#   failure. Outputs one log line per secret with its name and target, never its value.
#   Returns 0; 77 when a secret is denied (logged with the secret, the identity and
#   roles/secretmanager.secretAccessor); 64 for a malformed spec or a version that does not exist; 75 when
#   Secret Manager did not answer after retries.
runner_secrets_load() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local -a specs
  local spec rc=0
  if [[ $# -gt 0 ]]; then
    specs=("$@")
  else
    read -r -a specs <<<"${RUNNER_SECRETS:-}"
  fi
  for spec in "${specs[@]}"; do
    _runner_secret_load "${spec}" || { rc=$?; break; }
  done
  { _runner_xt_restore "${rc}"; } 2>/dev/null
}

# _runner_secret_load SPEC: read one "RESOURCE:TARGET" secret. Returns as runner_secrets_load.
_runner_secret_load() {
  local spec="$1" resource target tmp rc=0 value dir old_umask name
  resource="${spec%:*}"
  target="${spec##*:}"
  if [[ "${spec}" != *:* || ! "${resource}" =~ ^projects/[^/]+/secrets/([^/]+)/versions/[^/]+$ ||
    ! "${target}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    runner_log error "secret=bad-spec spec=\"${spec}\" fix=\"write secret=projects/P/secrets/S[/versions/V]:ENVVAR or :file\""
    return "${RUNNER_EXIT_CONFIG}"
  fi
  name="${resource#projects/*/secrets/}"
  name="${name%%/*}"
  old_umask="$(umask)"
  umask 077
  tmp="$(mktemp)"
  umask "${old_umask}"
  _runner_gcs_retry _runner_gcs_request "${tmp}" "$(_runner_secretmanager_base)/v1/${resource}:access" || rc=$?
  if [[ ${rc} -eq 0 && "${_RUNNER_HTTP}" != 200 ]]; then
    _runner_secret_verdict "${resource}" "${tmp}" || rc=$?
    rm -f "${tmp}"
    return "${rc}"
  fi
  if [[ ${rc} -ne 0 ]]; then
    rm -f "${tmp}"
    [[ ${rc} -ne ${RUNNER_EXIT_TEMPFAIL} ]] ||
      runner_log error "secret=unavailable name=${resource} http=${_RUNNER_HTTP:-000} temporary=true reason=\"no answer from Secret Manager after retries\""
    return "${rc}"  # a token failure is logged where it happened
  fi
  if [[ "${target}" == file ]]; then
    dir="${RUNNER_SECRETS_DIR:-${RUNNER_WORKDIR:-${TMPDIR:-/tmp}}/.secrets}"
    (umask 077 && mkdir -p "${dir}")
    export RUNNER_SECRETS_DIR="${dir}"
    (umask 077 && jq -r '.payload.data // empty' "${tmp}" | base64 -d >"${dir}/${name}") || rc=$?
  else
    value="$(jq -r '.payload.data // empty' "${tmp}" | base64 -d)" || rc=$?
    # -g: the script's variable, even when it shares a name with a local here.
    [[ ${rc} -ne 0 ]] || declare -gx "${target}=${value}"
  fi
  rm -f "${tmp}"
  if [[ ${rc} -ne 0 ]]; then
    runner_log error "secret=unreadable name=${resource} reason=\"the answer carried no value that decodes\""
    return "${RUNNER_EXIT_TEMPFAIL}"
  fi
  if [[ "${target}" == file ]]; then
    runner_log info "secret=loaded name=${resource} file=${RUNNER_SECRETS_DIR}/${name}"
  else
    runner_log info "secret=loaded name=${resource} env=${target}"
  fi
}

# _runner_secret_verdict RESOURCE ANSWER: log and map a non-200 answer: 401/403 → 77, 404 → 64, else 75.
_runner_secret_verdict() {
  local resource="$1" answer
  answer="$(jq -r '.error.message // empty' "$2" 2>/dev/null | head -c 300 | tr -d '\r\n"' || true)"
  case "${_RUNNER_HTTP}" in
    401 | 403)
      runner_log error "secret=denied name=${resource} identity=$(_runner_identity) http=${_RUNNER_HTTP}" \
        "answer=\"${answer}\" fix=\"grant ${RUNNER_ROLE_SECRET_ACCESSOR} on the secret to $(_runner_identity)" \
        "(gcloud secrets add-iam-policy-binding ...), or remove the secret= directive\""
      return "${RUNNER_EXIT_NOPERM}"
      ;;
    404)
      runner_log error "secret=not-found name=${resource} http=404 answer=\"${answer}\" fix=\"check the secret's name and version\""
      return "${RUNNER_EXIT_CONFIG}"
      ;;
    *)
      runner_log error "secret=failed name=${resource} http=${_RUNNER_HTTP} answer=\"${answer}\""
      return "${RUNNER_EXIT_TEMPFAIL}"
      ;;
  esac
}

# runner_secrets_forget
#   Remove the secret files (the entrypoint calls it when it ends). Returns 0.
runner_secrets_forget() {
  [[ -z "${RUNNER_SECRETS_DIR:-}" ]] || rm -rf "${RUNNER_SECRETS_DIR}" 2>/dev/null || true
}
