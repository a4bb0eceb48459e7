#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# The image entrypoint: fetch the pinned generation, verify, run (done-markers are the task's), forward SIGTERM, and
# end every run with exactly one end line.

# A metadata server stand-in: answers the token path with the status and body given on its command line.
_METADATA_STUB='
import http.server, sys
status, body = int(sys.argv[2]), sys.argv[3].encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if len(sys.argv) > 4:
            open(sys.argv[4], "a").write(self.path + "\n")
        ok = self.headers.get("Metadata-Flavor") == "Google"
        self.send_response(status if ok else 403); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'

setup_file() {
  load common-setup
  common_start_emulator
  common_start_iam_front
}

teardown() {
  common_stop_fault_proxy
  if [[ -f "${BATS_TEST_TMPDIR}/metadata.pid" ]]; then
    kill "$(cat "${BATS_TEST_TMPDIR}/metadata.pid")" 2>/dev/null || true
  fi
}

# metadata_stub STATUS BODY: start the metadata stand-in and point GCE_METADATA_HOST at it. Each request's
#   path is appended to ${BATS_TEST_TMPDIR}/metadata.requests.
metadata_stub() {
  local port i
  port="$(_common_free_port)"
  "${BATS_REPO_ROOT}/.venv/bin/python" -c "${_METADATA_STUB}" "${port}" "$1" "$2" "${BATS_TEST_TMPDIR}/metadata.requests" >/dev/null 2>&1 &
  echo $! >"${BATS_TEST_TMPDIR}/metadata.pid"
  for ((i = 0; i < 100; i++)); do
    (: </dev/tcp/127.0.0.1/"${port}") 2>/dev/null && break
    sleep 0.1
  done
  export GCE_METADATA_HOST="127.0.0.1:${port}"
}

# file_script CONTENT: a file:// script with its md5 set, as discovery pins it.
file_script() {
  printf '%s\n' "$1" >"${BATS_TEST_TMPDIR}/s.sh"
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  RUNNER_SCRIPT_MD5="$(openssl dgst -md5 -binary "${BATS_TEST_TMPDIR}/s.sh" | base64)"
  export RUNNER_SCRIPT_MD5
}

teardown_file() {
  load common-setup
  common_stop_iam_front
  common_stop_emulator
}

setup() {
  load common-setup
  common_setup
  ENTRY="${BATS_REPO_ROOT}/runner_image/entrypoint"
  export RUNNER_WORKDIR="${BATS_TEST_TMPDIR}/work"
  unset RUNNER_SCRIPT_MD5 RUNNER_SCRIPT_GENERATION RUNNER_NEEDS RUNNER_RERUN
}

# upload NAME CONTENT: store a script in the emulator; sets GEN and MD5 from the response.
upload() {
  local out
  out="$(printf '%s' "$2" | curl -sf -X POST --data-binary @- \
    "${STORAGE_EMULATOR_HOST}/upload/storage/v1/b/${RUNNER_STATE_BUCKET}/o?uploadType=media&name=$1")"
  GEN="$(jq -r .generation <<<"${out}")"
  MD5="$(jq -r .md5Hash <<<"${out}")"
}

use_gcs() {
  export RUNNER_SCRIPT_URI="gs://${RUNNER_STATE_BUCKET}/$1" RUNNER_SCRIPT_GENERATION="${GEN}" RUNNER_SCRIPT_MD5="${MD5}"
}

# assert_end_line CODE REASON: $output has exactly one end line, and it carries CODE, a duration, REASON and
#   the resource usage (runner_usage).
assert_end_line() {
  local n
  n="$(grep -c 'event=end ' <<<"${output}" || true)"
  [[ "${n}" -eq 1 ]] || { echo "expected one end line, found ${n}" >&2; return 1; }
  grep -qE "level=info event=end script=${RUNNER_SCRIPT_PATH} exit=$1 secs=[0-9]+ reason=$2 cpu_secs=[0-9]+\.[0-9]{3}( mem_peak=[0-9]+)? usage=(cgroup|rusage)\$" <<<"${output}" ||
    { echo "end line is not exit=$1 reason=$2: $(grep 'event=end ' <<<"${output}")" >&2; return 1; }
}

@test "entrypoint runs a file:// script in the work dir and propagates exit 3" {
  printf 'echo "in $(pwd)"; exit 3\n' >"${BATS_TEST_TMPDIR}/s.sh"
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  run "${ENTRY}"
  [ "${status}" -eq 3 ]
  grep -q "in ${RUNNER_WORKDIR}" <<<"${output}"
  grep -q 'event=start' <<<"${output}"
  assert_end_line 3 script-failed
}

@test "entrypoint fetches the discovered generation from GCS" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo first version'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q '^first version$' <<<"${output}"
  assert_end_line 0 ok
}

@test "the start and script-start lines carry ms stamps and the entrypoint's cost per phase" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo "first line t=${EPOCHREALTIME/[.,]/}"'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  local before=$(($(date +%s%N) / 1000000))
  run "${ENTRY}"
  [ "${status}" -eq 0 ]
  local start ready first total phases sum=0 part
  start="$(sed -nE 's/.*event=start .* t_ms=([0-9]+)$/\1/p' <<<"${output}")"
  ready="$(sed -nE 's/.*event=script-start .* t_ms=([0-9]+) total_ms=.*/\1/p' <<<"${output}")"
  total="$(sed -nE 's/.*event=script-start .* total_ms=([0-9]+) .*/\1/p' <<<"${output}")"
  phases="$(sed -nE 's/.*event=script-start .* phases_ms=([a-z0-9:,]+)$/\1/p' <<<"${output}")"
  first="$(sed -nE 's/^first line t=([0-9]+)$/\1/p' <<<"${output}")"
  [[ "${phases}" =~ ^lib:[0-9]+,config:[0-9]+,auth:[0-9]+,fetch:[0-9]+,syntax:[0-9]+,needs:[0-9]+,secrets:[0-9]+$ ]]
  # The stamps are the wall clock in ms, in order: run started <= entrypoint start <= script-start <= the script.
  ((before <= start && start <= ready && ready <= first / 1000))
  ((ready - start - total <= 1 && total - (ready - start) <= 1))
  for part in ${phases//,/ }; do sum=$((sum + ${part#*:})); done
  # Each phase is rounded down to the ms: the sum is the total within one ms per phase.
  ((sum <= total && total - sum <= 7))
  assert_end_line 0 ok
}

@test "a script replaced after discovery is not run in its new version (65, with the reason)" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo first version'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo second version'
  run "${ENTRY}"
  [ "${status}" -eq 65 ]
  grep -q 'fetch=missing .* generation='"${RUNNER_SCRIPT_GENERATION}" <<<"${output}"
  grep -q 'changed or was deleted after discovery' <<<"${output}"
  refute_grep 'version$'
  assert_end_line 65 generation-missing
}

@test "entrypoint refuses content that does not match the discovered md5 (65)" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo hi'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  export RUNNER_SCRIPT_MD5="AAAAAAAAAAAAAAAAAAAAAA=="
  run "${ENTRY}"
  [ "${status}" -eq 65 ]
  grep -q 'fetch=checksum-mismatch' <<<"${output}"
  refute_grep '^hi$'
  assert_end_line 65 checksum
}

@test "the md5 check (md5sum's hex digest turned into base64 in bash) accepts any content with its md5" {
  local i
  for ((i = 0; i < 12; i++)); do
    file_script "echo 'run ${i}' # $(head -c $((RANDOM % 200)) /dev/urandom | base64 -w0)"
    run "${ENTRY}"
    [ "${status}" -eq 0 ]
    grep -q "^run ${i}\$" <<<"${output}"
  done
}

@test "the md5 check holds in a work dir whose path has a backslash (md5sum escapes such names it prints)" {
  export RUNNER_WORKDIR="${BATS_TEST_TMPDIR}/work\\dir"
  file_script "echo 'odd dir'"
  run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q "^odd dir\$" <<<"${output}"
}

@test "without md5sum the md5 check falls back to openssl, and still refuses content that is not the pinned one" {
  local dir tool
  # A PATH holding every program of this machine but md5sum.
  mkdir -p "${BATS_TEST_TMPDIR}/path"
  for dir in /usr/local/bin /usr/bin /bin; do
    for tool in "${dir}"/*; do
      [[ "${tool##*/}" == md5sum || -e "${BATS_TEST_TMPDIR}/path/${tool##*/}" ]] || ln -s "${tool}" "${BATS_TEST_TMPDIR}/path/"
    done
  done
  file_script "echo 'via openssl' # $(head -c 99 /dev/urandom | base64 -w0)"
  PATH="${BATS_TEST_TMPDIR}/path" run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q "^via openssl\$" <<<"${output}"
  export RUNNER_SCRIPT_MD5="AAAAAAAAAAAAAAAAAAAAAA=="
  PATH="${BATS_TEST_TMPDIR}/path" run "${ENTRY}"
  [ "${status}" -eq 65 ]
  grep -q 'fetch=checksum-mismatch' <<<"${output}"
}

@test "on its way to the script and after it, the entrypoint runs no jq, date, mktemp, dirname or base64" {
  local tool
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo ran-it'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  metadata_stub 200 '{"access_token":"ya29.plain","expires_in":3599,"token_type":"Bearer"}'
  mkdir -p "${BATS_TEST_TMPDIR}/bin"
  for tool in jq date mktemp dirname base64 head tr awk sed cat; do
    printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 1\n' "${tool}" "${BATS_TEST_TMPDIR}/forbidden.log" >"${BATS_TEST_TMPDIR}/bin/${tool}"
    chmod +x "${BATS_TEST_TMPDIR}/bin/${tool}"
  done
  PATH="${BATS_TEST_TMPDIR}/bin:${PATH}" run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q '^ran-it$' <<<"${output}"
  assert_end_line 0 ok
  [ ! -e "${BATS_TEST_TMPDIR}/forbidden.log" ] || { cat "${BATS_TEST_TMPDIR}/forbidden.log" >&2; return 1; }
}

@test "entrypoint exits 64 naming the missing configuration" {
  unset RUNNER_SCRIPT_URI
  run "${ENTRY}"
  [ "${status}" -eq 64 ]
  grep -q 'config=missing var=RUNNER_SCRIPT_URI' <<<"${output}"
  assert_end_line 64 config
  export RUNNER_SCRIPT_URI="s3://bucket/s.sh"
  run "${ENTRY}"
  [ "${status}" -eq 64 ]
  grep -q 'config=bad-uri' <<<"${output}"
  assert_end_line 64 config
}

@test "a script that cannot be fetched ends with 75 and the fetch reason" {
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/absent.sh"
  run "${ENTRY}"
  [ "${status}" -eq 75 ]
  grep -q 'fetch=failed' <<<"${output}"
  assert_end_line 75 fetch
}

@test "an unexpected failure inside the entrypoint still ends with one end line" {
  printf 'echo script-ran\n' >"${BATS_TEST_TMPDIR}/s.sh"
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  mkdir -p "${RUNNER_WORKDIR}"
  : >"${RUNNER_WORKDIR}/.runner"  # a file where the entrypoint makes its directory
  run "${ENTRY}"
  [ "${status}" -ne 0 ]
  refute_grep '^script-ran$'
  assert_end_line "${status}" entrypoint-error
}

@test "a failed IAM preflight stops before the script with 77 and the preflight reason" {
  printf 'echo script-ran\n' >"${BATS_TEST_TMPDIR}/s.sh"
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  STORAGE_EMULATOR_HOST="$(cat "${BATS_FILE_TMPDIR}/iam.url")"
  common_as reader
  export RUNNER_NEEDS="gs://state-bkt/in/:read gs://state-bkt/out/:write"
  run "${ENTRY}"
  [ "${status}" -eq 77 ]
  grep -q 'require=denied identity=reader@p.iam.gserviceaccount.com resource=gs://state-bkt' <<<"${output}"
  grep -q 'event=preflight-failed' <<<"${output}"
  refute_grep '^script-ran$'
  assert_end_line 77 preflight
  common_as writer
  run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q '^script-ran$' <<<"${output}"
  assert_end_line 0 ok
}

@test "a needed BigQuery dataset that does not exist ends the preflight with 64, before the script" {
  printf 'echo script-ran\n' >"${BATS_TEST_TMPDIR}/s.sh"
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  common_fake_bq
  export RUNNER_IDENTITY=writer@p.iam.gserviceaccount.com RUNNER_NEEDS="bq:p:sales:read bq:p:nosuch:write"
  run "${ENTRY}"
  [ "${status}" -eq 64 ]
  grep -q 'require=ok resource=bq:p:sales perm=read' <<<"${output}"
  grep -q 'require=missing resource=bq:p:nosuch' <<<"${output}"
  refute_grep '^script-ran$'
  assert_end_line 64 preflight
}

@test "a bad preflight spec ends with 64, not as a missing permission" {
  printf 'echo script-ran\n' >"${BATS_TEST_TMPDIR}/s.sh"
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  export RUNNER_NEEDS="s3://bucket/x:read"
  run "${ENTRY}"
  [ "${status}" -eq 64 ]
  refute_grep '^script-ran$'
  assert_end_line 64 preflight
}

@test "a done-marker forged where pods may write does not stop the script, and a success writes none" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo ran-it'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  local hex
  hex="$(printf '%s' "${MD5}" | base64 -d | od -An -tx1 | tr -d ' \n')"
  # what a hostile pod could write for this script: the old marker path, for this run and for another
  upload "script-runner/done/${RUNNER_SCRIPT_PATH}/${hex}/${RUNNER_LOGICAL_DATE}" "{\"run\": \"${RUNNER_RUN_ID}\", \"try\": \"1\"}"
  upload "script-runner/done/${RUNNER_SCRIPT_PATH}/${hex}/${RUNNER_INTERVAL}" '{"run": "other", "try": "1"}'
  run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q '^ran-it$' <<<"${output}"
  assert_end_line 0 ok
  run common_list "script-runner/done/${RUNNER_SCRIPT_PATH}/"
  [ "$(grep -c . <<<"${output}")" -eq 2 ]  # the two forged ones only: the pod wrote none
}

@test "a read-only HOME is replaced by a writable one under the work dir (gsutil keeps state there)" {
  # /proc refuses new files even to root (tests here may run as root, for whom mode bits do not stop writes).
  local script="${BATS_TEST_TMPDIR}/home.sh"
  printf 'echo "home=${HOME}"; touch "${HOME}/state"\n' >"${script}"
  HOME=/proc/self RUNNER_SCRIPT_URI="file://${script}" run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q "^home=${RUNNER_WORKDIR}/.home$" <<<"${output}"
  [ -f "${RUNNER_WORKDIR}/.home/state" ]
}

@test "SIGTERM is forwarded to the script, its cleanup runs, and the exit is 143" {
  cat >"${BATS_TEST_TMPDIR}/s.sh" <<'SCRIPT'
source "${RUNNER_LIB}"
on_exit echo "cleanup ran"
echo started
sleep 30 &
wait $!
SCRIPT
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  "${ENTRY}" >"${BATS_TEST_TMPDIR}/out" 2>&1 &
  local pid=$! i code=0
  for ((i = 0; i < 50; i++)); do grep -q started "${BATS_TEST_TMPDIR}/out" && break; sleep 0.1; done
  kill -TERM "${pid}"
  wait "${pid}" || code=$?
  [ "${code}" -eq 143 ]
  grep -q 'signal=TERM action=forward' "${BATS_TEST_TMPDIR}/out"
  grep -q '^cleanup ran$' "${BATS_TEST_TMPDIR}/out"
  output="$(cat "${BATS_TEST_TMPDIR}/out")"
  assert_end_line 143 sigterm
}

@test "SIGTERM before the script starts ends with 143 and one end line; the script never runs" {
  # The fetch reads from a FIFO, so the entrypoint is held in the fetch until the test writes to it.
  mkfifo "${BATS_TEST_TMPDIR}/s.sh"
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  "${ENTRY}" >"${BATS_TEST_TMPDIR}/out" 2>&1 &
  local pid=$! i code=0
  for ((i = 0; i < 50; i++)); do grep -q 'event=start' "${BATS_TEST_TMPDIR}/out" && break; sleep 0.1; done
  kill -TERM "${pid}"
  # Release the fetch; bounded, in case the signal stopped the entrypoint before it opened the FIFO.
  timeout 10 bash -c 'printf "echo script-ran\n" >"$1"' _ "${BATS_TEST_TMPDIR}/s.sh" || true
  wait "${pid}" || code=$?
  [ "${code}" -eq 143 ]
  grep -q 'signal=TERM action=stop' "${BATS_TEST_TMPDIR}/out"
  output="$(cat "${BATS_TEST_TMPDIR}/out")"
  refute_grep '^script-ran$'
  assert_end_line 143 sigterm
}

@test "a script with a syntax error is not run: 64, naming the script and the line" {
  file_script $'echo before\nif true; then\n  echo inside\n'
  run "${ENTRY}"
  [ "${status}" -eq 64 ]
  refute_grep '^before$'
  grep -q "event=syntax-error script=${RUNNER_SCRIPT_PATH} error=\"${RUNNER_SCRIPT_PATH}: line [45]: syntax error" <<<"${output}"
  assert_end_line 64 syntax
}

# sigterm_foreground LAUNCHER...: start the entrypoint through LAUNCHER on a script that sleeps in the
#   foreground, SIGTERM the entrypoint alone (as the kubelet does), and check it ends at once with cleanup.
sigterm_foreground() {
  cat >"${BATS_TEST_TMPDIR}/s.sh" <<'SCRIPT'
source "${RUNNER_LIB}"
on_exit echo "cleanup ran"
echo started
sleep 60
echo "after sleep"
SCRIPT
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  "$@" "${ENTRY}" >"${BATS_TEST_TMPDIR}/out" 2>&1 &
  local pid=$! i code=0 start
  for ((i = 0; i < 50; i++)); do grep -q started "${BATS_TEST_TMPDIR}/out" && break; sleep 0.1; done
  start="${SECONDS}"
  kill -TERM "${pid}"
  wait "${pid}" || code=$?
  [ "${code}" -eq 143 ]
  [ $((SECONDS - start)) -le 10 ]
  grep -q '^cleanup ran$' "${BATS_TEST_TMPDIR}/out"
  output="$(cat "${BATS_TEST_TMPDIR}/out")"
  refute_grep '^after sleep$'
  [ "$(grep -c 'signal=TERM action=forward' <<<"${output}")" -eq 1 ]
  # The group signalled: the entrypoint's own when it leads one, else the script's.
  local group
  group="$(grep -o 'action=forward pid=[0-9]* group=[0-9]*$' <<<"${output}")"
  if [[ "$1" == setsid ]]; then [[ "${group##*=}" == "${pid}" ]]; else [[ "${group##*=}" != "${pid}" ]]; fi
  assert_end_line 143 sigterm
}

@test "the syntax check accepts a script that turns extglob on before using its patterns" {
  file_script $'shopt -s extglob\nx=bc\nif [[ ${x} == @(a|b)c ]]; then echo matched; fi'
  run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q '^matched$' <<<"${output}"
}

@test "SIGTERM reaches the command the script runs in the foreground (entrypoint leading its group, as pid 1)" {
  sigterm_foreground setsid
}

@test "SIGTERM reaches the command the script runs in the foreground (entrypoint in its parent's group)" {
  sigterm_foreground env
}

@test "no Google identity (metadata answers 404): one loud failure, 77, before anything runs" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo ran-it'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  metadata_stub 404 'service account not defined'
  run "${ENTRY}"
  [ "${status}" -eq 77 ]
  [ "$(grep -c 'auth=failed' <<<"${output}")" -eq 1 ]
  grep -q 'auth=failed source=metadata http=404 answer="service account not defined" reason=".*no usable Google service account"' <<<"${output}"
  grep -q 'fix="bind the Kubernetes service account' <<<"${output}"
  refute_grep '^ran-it$'
  refute_grep 'fetch='
  assert_end_line 77 auth
}

@test "the metadata server unavailable: retried, then 75 with the reason; a token file that is missing: 77" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo ran-it'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  GCE_METADATA_HOST="127.0.0.1:$(_common_free_port)"  # nothing listens there
  export RUNNER_SLEEP=true GCE_METADATA_HOST
  run "${ENTRY}"
  [ "${status}" -eq 75 ]
  grep -q 'auth=failed source=metadata http=000 .*reason="metadata server unavailable"' <<<"${output}"
  [ "$(grep -c 'gcs=retry' <<<"${output}")" -eq 4 ]
  refute_grep '^ran-it$'
  assert_end_line 75 auth
  unset GCE_METADATA_HOST
  export RUNNER_ACCESS_TOKEN_FILE="${BATS_TEST_TMPDIR}/absent.token"
  run "${ENTRY}"
  [ "${status}" -eq 77 ]
  grep -q 'auth=failed source=token-file' <<<"${output}"
  assert_end_line 77 auth
}

@test "a metadata token is what the GCS calls present (through the IAM front, which refuses calls without)" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo ran-it'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  STORAGE_EMULATOR_HOST="$(cat "${BATS_FILE_TMPDIR}/iam.url")"
  metadata_stub 200 "{\"access_token\": \"$(common_token reader)\", \"expires_in\": 3599, \"token_type\": \"Bearer\"}"
  run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q '^ran-it$' <<<"${output}"
  refute_grep "$(common_token reader)"
}

@test "the entrypoint asks the metadata server for a token once for its GCS calls, while it has time left" {
  upload "data/${BATS_TEST_NUMBER}.sh" 'echo ran-it'
  use_gcs "data/${BATS_TEST_NUMBER}.sh"
  STORAGE_EMULATOR_HOST="$(cat "${BATS_FILE_TMPDIR}/iam.url")"
  metadata_stub 200 "{\"access_token\": \"$(common_token writer)\", \"expires_in\": 3599, \"token_type\": \"Bearer\"}"
  run "${ENTRY}"
  [ "${status}" -eq 0 ]
  grep -q '^ran-it$' <<<"${output}"
  # the auth check and the fetch (done-markers are the Airflow side's since issue 25): one token
  [ "$(grep -c '/token$' "${BATS_TEST_TMPDIR}/metadata.requests")" -eq 1 ]
  # a token with less than the margin left is asked for again at every call
  : >"${BATS_TEST_TMPDIR}/metadata.requests"
  RUNNER_TOKEN_REFRESH_MARGIN=4000 RUNNER_RUN_ID="other-${BATS_TEST_NUMBER}" RUNNER_RERUN=true run "${ENTRY}"
  [ "${status}" -eq 0 ]
  [ "$(grep -c '/token$' "${BATS_TEST_TMPDIR}/metadata.requests")" -eq 2 ]
}

# sigint_trap LAUNCHER...: start the entrypoint through LAUNCHER on a script with its own INT trap that
#   sleeps in the foreground, SIGINT the entrypoint alone, and check the script's trap runs at once.
#   bash starts an asynchronous command with SIGINT ignored, and a script cannot trap a signal ignored on
#   entry: before the fix the INT never reached the script (its trap never ran, the sleep went on). The
#   entrypoint itself starts with SIGINT at its default, as pid 1 of a container does (a background job of
#   this test would otherwise inherit it ignored).
sigint_trap() {
  cat >"${BATS_TEST_TMPDIR}/s.sh" <<'SCRIPT'
trap 'echo "int trap ran"; exit 130' INT
echo started
sleep 30
echo "after sleep"
SCRIPT
  export RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh"
  "$@" "${ENTRY}" >"${BATS_TEST_TMPDIR}/out" 2>&1 &
  local pid=$! i code=0 start
  for ((i = 0; i < 50; i++)); do grep -q started "${BATS_TEST_TMPDIR}/out" && break; sleep 0.1; done
  start="${SECONDS}"
  kill -INT "${pid}"
  wait "${pid}" || code=$?
  output="$(cat "${BATS_TEST_TMPDIR}/out")"
  [ $((SECONDS - start)) -le 10 ]
  grep -q '^int trap ran$' <<<"${output}"
  refute_grep '^after sleep$'
  [ "${code}" -eq 130 ]
  assert_end_line 130 sigint
}

@test "SIGINT reaches the script's own INT trap (entrypoint leading its group, as pid 1)" {
  sigint_trap setsid env --default-signal=INT
}

@test "SIGINT reaches the script's own INT trap (entrypoint in its parent's group)" {
  sigint_trap env --default-signal=INT
}
