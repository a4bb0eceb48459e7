# shellcheck shell=bash
# Per-script Google identity by impersonation. With RUNNER_IMPERSONATE=EMAIL (set by the pod spec when the
# settings say identity_mode=impersonate, as on Cloud Composer 3, where every pod runs as the environment's
# service account), the pod's own token (metadata server, or RUNNER_ACCESS_TOKEN_FILE) mints a short-lived
# token for EMAIL through the IAM Credentials API:
#   POST {iamcredentials}/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken
# and every call of this library (GCS, Secret Manager) uses the minted token, minted again when less than
# RUNNER_TOKEN_REFRESH_MARGIN seconds (default 300) of it are left, so long scripts never hold an expired
# one. The pod's identity needs roles/iam.serviceAccountTokenCreator on EMAIL. gcloud, gsutil and bq
# impersonate by themselves (the entrypoint exports CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT).
#
# The API base is CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS (gcloud's own override, the local IAM front
# locally), else https://iamcredentials.googleapis.com/. The minted token is kept in a 0600 file under
# ${RUNNER_WORKDIR}/.runner/identity/ (the pod's own emptyDir), never in argv, the environment or a trace.

readonly RUNNER_ROLE_TOKEN_CREATOR="roles/iam.serviceAccountTokenCreator"

# _runner_identity_dir VAR: set VAR to the directory of the cached minted token. No fork.
_runner_identity_dir() {
  printf -v "$1" '%s/.runner/identity' "${RUNNER_WORKDIR:-${TMPDIR:-/tmp}}"
}

_runner_iamcredentials_base() {
  local base="${CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS:-https://iamcredentials.googleapis.com/}"
  printf '%s' "${base%/}"
}

# _runner_identity_token: set the caller's _RUNNER_TOKEN (which holds the pod's own token on entry) to a
#   token for RUNNER_IMPERSONATE: the cached one while it has more than the margin left, else a new one.
#   Returns 0; 77 when impersonation is denied (logged with the service account and the role); 75 when
#   the IAM Credentials API is unavailable.
_runner_identity_token() {
  local dir
  _runner_identity_cached && return 0
  _runner_identity_dir dir
  _runner_identity_mint "${dir}"
}

# _runner_identity_cached: set the caller's _RUNNER_TOKEN to the cached minted token when it has more than
#   the margin left. Returns 0 when it did, 1 otherwise (_RUNNER_TOKEN untouched).
_runner_identity_cached() {
  local dir expiry now token margin="${RUNNER_TOKEN_REFRESH_MARGIN:-300}"
  _runner_identity_dir dir
  [[ -r "${dir}/token" && -r "${dir}/expiry" ]] || return 1
  # Both files are written without a newline (_runner_identity_store): read whole, without a fork.
  IFS= read -r -d '' expiry <"${dir}/expiry" || true
  now="${EPOCHSECONDS}"
  [[ "${expiry}" =~ ^[0-9]+$ ]] && ((expiry - now > margin)) || return 1
  IFS= read -r -d '' token <"${dir}/token" || true
  [[ -n "${token}" ]] || return 1
  _RUNNER_TOKEN="${token}"
}

# _runner_identity_mint DIR: mint a token for RUNNER_IMPERSONATE with the caller's _RUNNER_TOKEN, store it
#   (and its expiry, epoch seconds) in DIR and set _RUNNER_TOKEN to it. Returns 0, 77 denied, 75 unavailable.
_runner_identity_mint() {
  local dir="$1" email="${RUNNER_IMPERSONATE}" tmp code token expire expiry body url
  url="$(_runner_iamcredentials_base)/v1/projects/-/serviceAccounts/$(_runner_urlencode "${email}"):generateAccessToken"
  body="$(jq -cn --arg l "${RUNNER_IMPERSONATE_LIFETIME:-3600}s" \
    '{lifetime: $l, scope: ["https://www.googleapis.com/auth/cloud-platform"]}')"
  tmp="$(mktemp)"
  code="$(curl -sS --max-time "${RUNNER_GCS_TIMEOUT:-60}" -o "${tmp}" -w '%{http_code}' -K - -X POST \
    -H 'Content-Type: application/json' --data-binary "${body}" "${url}" \
    <<<"header = \"Authorization: Bearer ${_RUNNER_TOKEN}\"" 2>/dev/null)" || true
  code="${code:-000}"
  _RUNNER_TOKEN=""
  if [[ "${code}" == 200 ]]; then
    token="$(jq -r '.accessToken // empty' "${tmp}" 2>/dev/null || true)"
    expire="$(jq -r '.expireTime // empty' "${tmp}" 2>/dev/null || true)"
    rm -f "${tmp}"
    expiry="$(date -d "${expire}" +%s 2>/dev/null || true)"
    if [[ -n "${token}" && "${token}" != *[\"\\]* && "${expiry}" =~ ^[0-9]+$ ]]; then
      _runner_identity_store "${dir}" "${token}" "${expiry}"
      _RUNNER_TOKEN="${token}"
      return 0
    fi
    runner_log error "auth=failed impersonate=${email} reason=\"the IAM Credentials API answered without a token\""
    return "${RUNNER_EXIT_TEMPFAIL}"
  fi
  body="$(jq -r '.error.message // empty' "${tmp}" 2>/dev/null | head -c 300 | tr -d '\r\n"' || true)"
  rm -f "${tmp}"
  case "${code}" in
    401 | 403 | 404)
      runner_log error "auth=impersonation-denied service_account=${email} http=${code} answer=\"${body}\"" \
        "reason=\"the pod's identity may not impersonate ${email}\"" \
        "fix=\"grant the pod's service account ${RUNNER_ROLE_TOKEN_CREATOR} on ${email}" \
        "(gcloud iam service-accounts add-iam-policy-binding ${email} --member=serviceAccount:POD_SA" \
        "--role=${RUNNER_ROLE_TOKEN_CREATOR}), or remove service_account= from the script\""
      return "${RUNNER_EXIT_NOPERM}"
      ;;
    *)
      runner_log error "auth=failed impersonate=${email} http=${code} answer=\"${body}\" reason=\"IAM Credentials API unavailable\""
      return "${RUNNER_EXIT_TEMPFAIL}"
      ;;
  esac
}

# _runner_identity_store DIR TOKEN EXPIRY: write the token and its expiry, each by an atomic rename of a
#   0600 file (a script's parallel library calls may mint at the same time; each result is valid).
_runner_identity_store() {
  local dir="$1" tmp
  (umask 077 && mkdir -p "${dir}")
  tmp="$(umask 077 && mktemp "${dir}/.token.XXXXXX")"
  printf '%s' "$2" >"${tmp}"
  mv -f "${tmp}" "${dir}/token"
  tmp="$(umask 077 && mktemp "${dir}/.expiry.XXXXXX")"
  printf '%s' "$3" >"${tmp}"
  mv -f "${tmp}" "${dir}/expiry"
}

# runner_identity_forget
#   Remove the cached impersonated token (the entrypoint calls it when it ends). Returns 0.
runner_identity_forget() {
  local dir
  _runner_identity_dir dir
  [[ -e "${dir}" || -L "${dir}" ]] || return 0  # nothing minted (no impersonation): no rm to run
  rm -rf "${dir}" 2>/dev/null || true
}
