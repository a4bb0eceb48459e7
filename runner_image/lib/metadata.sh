# shellcheck shell=bash
# The metadata server's token answer, read without a fork: the plain flat JSON object the server sends by bash
# regexes, anything else by jq as before (gcs.sh's _runner_pod_token calls these). The token stays in
# variables passed by name: never an argument, never traced (the callers run with xtrace off).

# A plain flat JSON object, as the metadata server answers a token request: keys and string values without
# escapes or control characters, integer, true, false and null values (_runner_metadata_token_parse).
_RUNNER_JW=$'[ \t\r\n]*'                  # JSON whitespace
_RUNNER_JS='"[^"\[:cntrl:]]*"'            # a plain string
_RUNNER_JC="${_RUNNER_JW}:${_RUNNER_JW}"  # between a key and its value
_RUNNER_JP="${_RUNNER_JW}${_RUNNER_JS}${_RUNNER_JC}(${_RUNNER_JS}|-?(0|[1-9][0-9]{0,15})|true|false|null)${_RUNNER_JW}"
readonly _RUNNER_JSON_FLAT_RE="^${_RUNNER_JW}[{](${_RUNNER_JP}(,${_RUNNER_JP})*)?[}]${_RUNNER_JW}\$"
# access_token (RFC 6750 b64token characters) and expires_in (up to 9 digits) as keys of such an object.
readonly _RUNNER_JSON_TOKEN_RE="[{,]${_RUNNER_JW}\"access_token\"${_RUNNER_JC}\"([A-Za-z0-9._~+/=-]+)\"${_RUNNER_JW}[,}]"
readonly _RUNNER_JSON_EXPIRES_RE="[{,]${_RUNNER_JW}\"expires_in\"${_RUNNER_JC}(0|[1-9][0-9]{0,8})${_RUNNER_JW}[,}]"
unset _RUNNER_JW _RUNNER_JS _RUNNER_JC _RUNNER_JP

# _runner_metadata_token_parse VAR: read the metadata server's token answer from the caller's variable VAR
#   (passed by name, so the token is never an argument) into the caller's _RUNNER_TOKEN (access_token, ""
#   when absent) and the caller's `expires` (expires_in, 0 when absent), as
#   jq -r '"\(.expires_in // 0) \(.access_token // "")"' | read -r expires _RUNNER_TOKEN
#   reads them. The plain flat object the metadata server returns is read with bash regexes (no fork); any
#   other answer (escapes, nesting, a repeated key, a token or expiry of another form, not JSON) goes to that
#   jq, on stdin. The object is checked with the token's first occurrence replaced by `x` (quick on a long
#   token): `x` is valid only inside a string, so the shortened text is a valid flat object only when the
#   answer is. BASH_REMATCH is left as the caller had it (no token lingers there). Returns 0.
# shellcheck disable=SC2034  # expires is the caller's (_runner_pod_token's local)
_runner_metadata_token_parse() {
  local LC_ALL=C
  local _mt_json="${!1}" _mt_short
  local -a _mt_matched=("${BASH_REMATCH[@]}")
  _RUNNER_TOKEN=""
  expires=""
  # Each key once (jq would take the last of two), each in its plain form; then the whole object.
  if [[ "${_mt_json}" != *\"access_token\"*\"access_token\"* && "${_mt_json}" != *\"expires_in\"*\"expires_in\"* &&
    "${_mt_json}" =~ ${_RUNNER_JSON_TOKEN_RE} ]]; then
    _RUNNER_TOKEN="${BASH_REMATCH[1]}"
    if [[ "${_mt_json}" =~ ${_RUNNER_JSON_EXPIRES_RE} ]]; then
      expires="${BASH_REMATCH[1]}"
      _mt_short="${_mt_json/"${_RUNNER_TOKEN}"/x}"
      [[ "${_mt_short}" =~ ${_RUNNER_JSON_FLAT_RE} ]] || _RUNNER_TOKEN=""
    else
      _RUNNER_TOKEN=""
    fi
  fi
  BASH_REMATCH=("${_mt_matched[@]}")
  [[ -z "${_RUNNER_TOKEN}" ]] || return 0
  expires=""
  read -r expires _RUNNER_TOKEN \
    < <(jq -r '"\(.expires_in // 0) \(.access_token // "")"' <<<"${_mt_json}" 2>/dev/null || true) || true
  return 0
}

# _runner_answer_excerpt VAR: cut the caller's variable VAR to what `head -c 200 | tr -d '\r\n"'` leaves of it
#   (the first 200 bytes, without CR, LF and double quotes), for a log line. No fork. Returns 0.
_runner_answer_excerpt() {
  local LC_ALL=C
  local _ae_text="${!1}"
  _ae_text="${_ae_text:0:200}"
  printf -v "$1" '%s' "${_ae_text//[$'\r\n"']/}"
}
