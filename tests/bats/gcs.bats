#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# gcs.sh and metadata.sh without forks: object names percent-encoded in bash exactly as jq's @uri did, and
# the metadata server's token answer read by a bash regex (jq only for answers of another shape), never traced.

setup_file() {
  load common-setup
  common_start_metadata
}

teardown_file() {
  load common-setup
  common_stop_metadata
}

setup() {
  load common-setup
  common_setup
  unset STORAGE_EMULATOR_HOST _RUNNER_POD_TOKEN _RUNNER_POD_TOKEN_UNTIL
  GCE_METADATA_HOST="$(cat "${BATS_FILE_TMPDIR}/metadata.host")"
  export GCE_METADATA_HOST RUNNER_SLEEP=true
  REAL_JQ="$(command -v jq)"  # the reference, past common_jq_recorder's
  # shellcheck source=runner_image/lib/runner.sh
  source "${RUNNER_LIB}"
}

# jq_uri STRING...: jq's @uri of each STRING, one a line (one jq for all).
jq_uri() {
  "${REAL_JQ}" -rn '$ARGS.positional[] | @uri' --args "$@"
}

# assert_like_jq BODY: _runner_metadata_token_parse reads BODY as jq -r '"\(.expires_in // 0) \(.access_token
#   // "")"' | read -r expires token did before it.
assert_like_jq() {
  local body="$1" want_expires="" want_token="" expires="" _RUNNER_TOKEN=""
  read -r want_expires want_token < <("${REAL_JQ}" -r '"\(.expires_in // 0) \(.access_token // "")"' <<<"${body}" 2>/dev/null || true) || true
  _runner_metadata_token_parse body
  [[ "${expires}" == "${want_expires}" && "${_RUNNER_TOKEN}" == "${want_token}" ]] ||
    { printf 'body %s: got [%s] [%s], jq reads [%s] [%s]\n' "${body}" "${expires}" "${_RUNNER_TOKEN}" "${want_expires}" "${want_token}" >&2; return 1; }
}

@test "object names are percent-encoded byte for byte as jq's @uri does, ASCII, UTF-8 and mixed" {
  [[ "$(jq --version)" == jq-1.6* ]] || skip "the image's jq is 1.6 (runner_image/apt-packages.txt); this one is $(jq --version)"
  local -a strings=() want=() pool=(a Z 0 9 - _ . '~' '!' '*' "'" '(' ')' ' ' / % + '#' '?' '&' '=' : @ ';' ',' '"' "\\"
    '<' '>' '[' ']' '{' '}' '|' '^' '`' '$' $'\t' $'\n' é ß € 日 本 𝄞 🎉 $'\u00a0' $'\u2028')
  local i j s code got hex
  for ((code = 1; code < 128; code++)); do  # every ASCII byte but NUL, alone
    printf -v hex '%02x' "${code}"
    printf -v s '%b' "\\x${hex}"
    strings+=("${s}")
  done
  strings+=("" "a b/c%d+e#f?g&h=i" data/etl/load.sh "é" "€" "𝄞" "日本語/ファイル.sh" "emoji 🎉.sh" "%2F already" "~user/!*'()"
    "spaces  and	tabs" "line one
line two" "100% sure? #1 + 2")
  RANDOM=2612
  for ((i = 0; i < 300; i++)); do
    s=""
    for ((j = RANDOM % 16; j > 0; j--)); do s+="${pool[RANDOM % ${#pool[@]}]}"; done
    strings+=("${s}")
  done
  mapfile -t want < <(jq_uri "${strings[@]}")
  [ "${#want[@]}" -eq "${#strings[@]}" ]
  for i in "${!strings[@]}"; do
    _runner_urlencode_to got "${strings[i]}"
    [[ "${got}" == "${want[i]}" ]] || { printf 'string %q: got %s, jq %s\n' "${strings[i]}" "${got}" "${want[i]}" >&2; return 1; }
  done
}

@test "the encoding keeps A-Z a-z 0-9 - _ . ~ ! * ' ( ) and writes every other byte as uppercase %XX" {
  local got
  _runner_urlencode_to got "a b/c%d+e#f?g"
  [ "${got}" = "a%20b%2Fc%25d%2Be%23f%3Fg" ]
  _runner_urlencode_to got "AZaz09-_.~!*'()"
  [ "${got}" = "AZaz09-_.~!*'()" ]
  _runner_urlencode_to got "é/日本.sh"
  [ "${got}" = "%C3%A9%2F%E6%97%A5%E6%9C%AC.sh" ]
  # In a UTF-8 locale too: bytes, not characters.
  LC_ALL=C.UTF-8 _runner_urlencode_to got "é"
  [ "${got}" = "%C3%A9" ]
  # The printing form, and an object URL built without a fork.
  [ "$(_runner_urlencode 'x y')" = "x%20y" ]
  STORAGE_EMULATOR_HOST=http://127.0.0.1:1 _runner_gcs_object_url got bkt "data/a b.sh"
  [ "${got}" = "http://127.0.0.1:1/storage/v1/b/bkt/o/data%2Fa%20b.sh" ]
  _runner_gcs_object_url got bkt x
  [ "${got}" = "https://storage.googleapis.com/storage/v1/b/bkt/o/x" ]
}

@test "the metadata server's plain answer is read without jq, as jq read it" {
  common_jq_recorder
  local long body
  long="ya29.c.$(printf 'AbC-_9.x%.0s' {1..250})"
  for body in \
    '{"access_token":"ya29.tok","expires_in":3599,"token_type":"Bearer"}' \
    "{\"access_token\": \"${long}\", \"expires_in\": 3599, \"token_type\": \"Bearer\"}" \
    $'{\n  "token_type" : "Bearer",\r\n\t"expires_in":0 , "access_token":"a+b/c~d=="\n}\n' \
    '{"expires_in":1,"access_token":"t","n":null,"b":true,"f":false,"i":-12,"s":"é access_tokens x"}'; do
    assert_like_jq "${body}"
  done
  [ ! -s "${JQ_ARGV_LOG}" ]
}

@test "any other answer goes to jq and is read as jq reads it" {
  local body
  common_jq_recorder
  for body in \
    '{"access_token":"ya29.a\/b","expires_in":3599}' \
    '{"access_token":"t","expires_in":3599,"x":{"y":1}}' \
    '{"access_token":"first","expires_in":5,"access_token":"last"}' \
    '{"access_token":"t","expires_in":5,"expires_in":7}' \
    '{"access_\u0074oken":"escaped-key","access_token":"t","expires_in":5}' \
    '{"access_token":"t","expires_in":3599.0}' \
    '{"access_token":"t","expires_in":"3599"}' \
    '{"access_token":"t","expires_in":12345678901}' \
    '{"access_token":"t"}' \
    '{"expires_in":5}' \
    '{"access_token":"two words","expires_in":5}' \
    '{"access_token":"t","expires_in":5,"x":[1]}' \
    '{"access_token":"t","expires_in":5,"x":1.5}' \
    '{"access_token":"t","expires_in":5}{"access_token":"u","expires_in":6}' \
    '{"access_token":"t","expires_in":5} trailing' \
    '{"access_token":"t","expires_in":5,}' \
    '{"access_token":"t","expires_in":5 x}' \
    '{"access_token":"t","expires_in":05}' \
    '{"access_token":"t","expires_in":5' \
    '["access_token","t"]' \
    'not json at all' \
    ''; do
    : >"${JQ_ARGV_LOG}"
    assert_like_jq "${body}"
    [ -s "${JQ_ARGV_LOG}" ] || { echo "jq was not asked for ${body}" >&2; return 1; }
  done
}

@test "the parse leaves the caller's BASH_REMATCH as it was" {
  local body='{"access_token":"ya29.secret","expires_in":3599}' expires _RUNNER_TOKEN mine="keep me"
  [[ "${mine}" =~ (keep)\ (me) ]]
  _runner_metadata_token_parse body
  [ "${_RUNNER_TOKEN}" = "ya29.secret" ]
  [ "${#BASH_REMATCH[@]}" -eq 3 ]
  [ "${BASH_REMATCH[0]}" = "keep me" ] && [ "${BASH_REMATCH[2]}" = "me" ]
}

@test "a metadata token is cached from either parse, and is never traced nor on a command line" {
  common_fake_curl_recorder
  common_jq_recorder
  local tok seen jq_calls
  for tok in ya29.plain-Token_0123 'ya29.escaped\/slash'; do
    common_metadata_answer 200 "{\"access_token\":\"${tok}\",\"expires_in\":3599,\"token_type\":\"Bearer\"}"
    : >"${CURL_ARGV_LOG}"
    : >"${JQ_ARGV_LOG}"
    run bash -c 'set -Eeuxo pipefail; source "${RUNNER_LIB}"; runner_gcs_auth_check; echo "cached=${_RUNNER_POD_TOKEN:+yes}"'
    [ "${status}" -eq 0 ]
    grep -q '^cached=yes$' <<<"${output}"
    seen="${tok%%[\\/]*}"  # what a trace or an argv would show of it
    refute_grep "${seen}"
    refute_grep 'access_token'
    refute_grep "${seen}" "${CURL_ARGV_LOG}"
    refute_grep "${seen}" "${JQ_ARGV_LOG}"
    jq_calls="$(grep -c . "${JQ_ARGV_LOG}" || true)"
    # The plain answer needs no jq; the escaped one goes to jq (on stdin).
    if [[ "${tok}" == *\\* ]]; then [ "${jq_calls}" -eq 1 ]; else [ "${jq_calls}" -eq 0 ]; fi
  done
}

@test "a refused token answer is logged cut as head -c 200 | tr -d '\\r\\n\"' cut it" {
  local body want LC_ALL=C
  # 198 bytes, then x, then an é whose second byte is past the cut.
  printf -v body 'ab"c\r\n%.0s' {1..33}
  body+="xé€ tail"
  common_metadata_answer 403 "${body}"
  want="$(printf '%s' "${body}" | head -c 200 | tr -d '\r\n"')"
  [ "${#want}" -eq 101 ]  # 99 + x + half an é
  run runner_gcs_auth_check
  [ "${status}" -eq 77 ]
  [[ "${output}" == *"auth=failed source=metadata http=403 answer=\"${want}\" reason="* ]]
  common_metadata_answer 500 ""
  run runner_gcs_auth_check
  [ "${status}" -eq 75 ]
  grep -qF 'auth=failed source=metadata http=500 answer="" reason="metadata server unavailable"' <<<"${output}"
}
