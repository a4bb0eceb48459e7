#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# runner_require: IAM preflight. GCS through the local IAM front (a real permission model on the emulator);
# BigQuery through a fake `bq` (canned answers) and a stub of the REST tables.testIamPermissions.

# The BigQuery stub: tables.testIamPermissions, granting by table name (*_rw: whatever is asked, *_ro: only
# bigquery.tables.getData, *_broken: HTTP 500, else nothing). Every request is appended to a JSON-lines log.
_BQ_STUB='
import http.server, json, sys
log = open(sys.argv[2], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        log.write(json.dumps({"path": self.path, "auth": self.headers.get("Authorization"), "body": body}) + "\n")
        log.flush()
        table, asked = self.path.rsplit("/", 1)[-1].split(":")[0], body.get("permissions", [])
        held = asked if table.endswith("_rw") else [p for p in asked if p == "bigquery.tables.getData" and table.endswith("_ro")]
        code, out = (500, {"error": {"code": 500}}) if table.endswith("_broken") else (200, {"permissions": held} if held else {})
        data = json.dumps(out).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'

setup_file() {
  load common-setup
  common_start_emulator
  common_start_iam_front
  local port
  port="$(_common_free_port)"
  "${BATS_REPO_ROOT}/.venv/bin/python" -c "${_BQ_STUB}" "${port}" "${BATS_FILE_TMPDIR}/bq-stub.log" \
    >"${BATS_FILE_TMPDIR}/bq-stub.out" 2>&1 &
  echo $! >"${BATS_FILE_TMPDIR}/bq-stub.pid"
  common_wait_url "http://127.0.0.1:${port}/"
  printf 'http://127.0.0.1:%s' "${port}" >"${BATS_FILE_TMPDIR}/bq-stub.url"
}

teardown_file() {
  load common-setup
  kill "$(cat "${BATS_FILE_TMPDIR}/bq-stub.pid")" 2>/dev/null || true
  common_stop_iam_front
  common_stop_emulator
}

setup() {
  load common-setup
  common_setup
  # shellcheck source=runner_image/lib/runner.sh
  source "${RUNNER_LIB}"
  STORAGE_EMULATOR_HOST="$(cat "${BATS_FILE_TMPDIR}/iam.url")"
  common_fake_bq
  export RUNNER_BQ_API_BASE
  RUNNER_BQ_API_BASE="$(cat "${BATS_FILE_TMPDIR}/bq-stub.url")"
}

teardown() {
  common_stop_fault_proxy
}

# stub_requests: the stub's log lines for this test's tables (names carry the test number).
stub_requests() {
  grep -F "_t${BATS_TEST_NUMBER}_" "${BATS_FILE_TMPDIR}/bq-stub.log" || true
}

@test "require passes when the identity holds the permissions" {
  common_as writer
  run runner_require gs://state-bkt/out/:write gs://state-bkt/in/:read
  [ "${status}" -eq 0 ]
  grep -q 'require=ok resource=gs://state-bkt perm=write' <<<"${output}"
}

@test "a token made up from an account's name is nobody's: the IAM front refuses it (77), writing nothing" {
  printf 'local-token-writer' >"${BATS_TEST_TMPDIR}/forged.token"
  export RUNNER_ACCESS_TOKEN_FILE="${BATS_TEST_TMPDIR}/forged.token" RUNNER_IDENTITY=writer@p.iam.gserviceaccount.com
  printf 'forged' >"${BATS_TEST_TMPDIR}/x.txt"
  run runner_gcs_put state-bkt "out/forged-${BATS_TEST_NUMBER}.txt" "${BATS_TEST_TMPDIR}/x.txt"
  [ "${status}" -eq 77 ]
  run curl -s -o /dev/null -w '%{http_code}' \
    "$(cat "${BATS_FILE_TMPDIR}/emulator.url")/storage/v1/b/state-bkt/o/out%2Fforged-${BATS_TEST_NUMBER}.txt"
  [ "${output}" = 404 ]
  # The writer's own (drawn) token writes.
  common_as writer
  run runner_gcs_put state-bkt "out/forged-${BATS_TEST_NUMBER}.txt" "${BATS_TEST_TMPDIR}/x.txt"
  [ "${status}" -eq 0 ]
}

@test "require names the identity, the resource, the missing permissions and the fix" {
  common_as reader
  run runner_require gs://state-bkt/in/:read gs://state-bkt/out/:write
  [ "${status}" -eq 77 ]
  grep -q 'require=denied identity=reader@p.iam.gserviceaccount.com resource=gs://state-bkt missing=storage.objects.create,storage.objects.delete' <<<"${output}"
  grep -q 'fix="grant roles/storage.objectUser on gs://state-bkt to reader@p.iam.gserviceaccount.com"' <<<"${output}"
}

# A metadata server stand-in for the account "reader": its token (for the IAM front) and its email.
_METADATA_READER='
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Metadata-Flavor") != "Google":
            body, code = b"", 403
        elif self.path.endswith("/token"):
            body, code = json.dumps({"access_token": open(sys.argv[2]).read(), "expires_in": 3599, "token_type": "Bearer"}).encode(), 200
        elif self.path.endswith("/email"):
            body, code = b"reader@p.iam.gserviceaccount.com", 200
        else:
            body, code = b"", 404
        self.send_response(code); self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'

@test "require through the metadata server names the Google identity it serves, not the Kubernetes account" {
  local port i
  port="$(_common_free_port)"
  "${BATS_REPO_ROOT}/.venv/bin/python" -c "${_METADATA_READER}" "${port}" "${BATS_FILE_TMPDIR}/iam-tokens/reader.token" \
    >/dev/null 2>&1 &
  echo $! >"${BATS_TEST_TMPDIR}/metadata.pid"
  for ((i = 0; i < 100; i++)); do
    (: </dev/tcp/127.0.0.1/"${port}") 2>/dev/null && break
    sleep 0.1
  done
  export GCE_METADATA_HOST="127.0.0.1:${port}" RUNNER_IDENTITY=reader  # the pod spec's service account name
  run runner_require gs://state-bkt/out/:write
  kill "$(cat "${BATS_TEST_TMPDIR}/metadata.pid")" 2>/dev/null || true
  [ "${status}" -eq 77 ]
  grep -q 'require=denied identity=reader@p.iam.gserviceaccount.com resource=gs://state-bkt' <<<"${output}"
  grep -q 'fix="grant roles/storage.objectUser on gs://state-bkt to reader@p.iam.gserviceaccount.com"' <<<"${output}"
}

@test "require reports an unknown bucket or identity as unavailable, not as ok" {
  export RUNNER_ACCESS_TOKEN_FILE="${BATS_TEST_TMPDIR}/bogus"
  printf 'bogus' >"${RUNNER_ACCESS_TOKEN_FILE}"
  run runner_require gs://state-bkt/x:read
  [ "${status}" -eq 77 ]
  grep -q 'require=unavailable resource=gs://state-bkt http=401' <<<"${output}"
}

@test "require: a single 503 is retried; GCS unavailable throughout is temporary (75), not a missing permission" {
  common_as writer
  export RUNNER_SLEEP=true
  common_fault_proxy 1 503 "$(cat "${BATS_FILE_TMPDIR}/iam.url")"
  run runner_require gs://state-bkt/out/:write
  [ "${status}" -eq 0 ]
  grep -q 'gcs=retry attempt=1 http=503' <<<"${output}"
  grep -q 'require=ok resource=gs://state-bkt perm=write' <<<"${output}"
  common_stop_fault_proxy
  common_fault_proxy -1 503 "$(cat "${BATS_FILE_TMPDIR}/iam.url")"
  run runner_require gs://state-bkt/out/:write
  [ "${status}" -eq 75 ]
  grep -q 'require=unavailable resource=gs://state-bkt http=503 identity=writer@p.iam.gserviceaccount.com temporary=true' <<<"${output}"
  [ "$(grep -c ' -> 503$' "${FAULT_LOG}")" -eq 5 ]
}

@test "require rejects a bad spec with the fix" {
  common_as writer
  run runner_require gs://state-bkt/x:delete
  [ "${status}" -eq 64 ]
  grep -q 'fix="use :read or :write"' <<<"${output}"
  run runner_require s3://bucket:read
  [ "${status}" -eq 64 ]
  grep -q 'fix="use gs://bucket/prefix:read|write or bq:PROJECT:DATASET\[.TABLE\]:read|write"' <<<"${output}"
}

@test "writes are enforced too: the reader cannot upload, the writer can" {
  echo data >"${BATS_TEST_TMPDIR}/f"
  common_as reader
  run runner_gcs_put state-bkt out/f "${BATS_TEST_TMPDIR}/f"
  [ "${status}" -eq 77 ]
  grep -q 'http=403 reason=denied' <<<"${output}"
  common_as writer
  run runner_gcs_put state-bkt out/f "${BATS_TEST_TMPDIR}/f"
  [ "${status}" -eq 0 ]
}

@test "require bq: a visible dataset passes and says that only its visibility was checked" {
  local d="sales_t${BATS_TEST_NUMBER}"
  common_as writer
  run runner_require "bq:p:${d}:read" "bq:example.com:proj:${d}:write"
  [ "${status}" -eq 0 ]
  grep -q "require=ok resource=bq:p:${d} perm=read checked=bigquery.datasets.get note=\"dataset read not checkable; table-level read is" <<<"${output}"
  grep -q "require=ok resource=bq:example.com:proj:${d} perm=write checked=bigquery.datasets.get note=\"dataset write not checkable; table-level write is" <<<"${output}"
  # bq is asked about exactly the named resource (a domain-scoped project keeps its colon); no REST call.
  grep -qx "show --format=prettyjson p:${d}" "${FAKE_BQ_CALLS}"
  grep -qx "show --format=prettyjson example.com:proj:${d}" "${FAKE_BQ_CALLS}"
  touch "${BATS_FILE_TMPDIR}/bq-stub.log"
  refute_grep "/datasets/${d}" "${BATS_FILE_TMPDIR}/bq-stub.log"
}

@test "require bq: a dataset or table that does not exist is missing (64), with the fix" {
  common_as writer
  run runner_require bq:p:nosuch:read
  [ "${status}" -eq 64 ]
  grep -q 'require=missing resource=bq:p:nosuch dataset=p:nosuch error="BigQuery error in show operation: Not found: Dataset p:nosuch"' <<<"${output}"
  grep -q 'fix="create the dataset or fix the name"' <<<"${output}"
  refute_grep 'require=denied'
  run runner_require bq:p:sales.nosuch:write
  [ "${status}" -eq 64 ]
  grep -q 'require=missing resource=bq:p:sales.nosuch table=p:sales.nosuch' <<<"${output}"
  grep -q 'fix="create the table or fix the name (a script that creates the table can require bq:p:sales:write)"' <<<"${output}"
}

@test "require bq: access denied names the identity, the permission bq needed and the role" {
  common_as reader
  run runner_require bq:p:secret:read
  [ "${status}" -eq 77 ]
  grep -q 'require=denied identity=reader@p.iam.gserviceaccount.com resource=bq:p:secret missing=bigquery.datasets.get' <<<"${output}"
  grep -q 'fix="grant roles/bigquery.dataViewer on dataset p:secret to reader@p.iam.gserviceaccount.com"' <<<"${output}"
  run runner_require bq:p:secret.orders:write
  [ "${status}" -eq 77 ]
  grep -q 'require=denied identity=reader@p.iam.gserviceaccount.com resource=bq:p:secret.orders missing=bigquery.tables.get' <<<"${output}"
  grep -q 'fix="grant roles/bigquery.dataEditor on table p:secret.orders to reader@p.iam.gserviceaccount.com"' <<<"${output}"
}

@test "require bq: any other bq failure is unavailable (temporary, 75) with bq's first error line, not a denial" {
  common_as writer
  run runner_require bq:p:flaky:read
  [ "${status}" -eq 75 ]
  grep -q 'require=unavailable resource=bq:p:flaky identity=writer@p.iam.gserviceaccount.com bq-exit=1 temporary=true' <<<"${output}"
  grep -q 'error="Network connection problem encountered, please try again."' <<<"${output}"
  refute_grep 'require=(denied|missing|ok)'
}

@test "require bq: table write checks bigquery.tables.updateData through testIamPermissions" {
  local t="orders_t${BATS_TEST_NUMBER}_"
  common_as writer
  run runner_require "bq:p:sales.${t}rw:write"
  [ "${status}" -eq 0 ]
  grep -q "require=ok resource=bq:p:sales.${t}rw perm=write checked=bigquery.tables.get,bigquery.tables.updateData" <<<"${output}"
  # The REST call: the table's endpoint, the runner's token, only the permission in question.
  stub_requests | jq -se --arg path "/bigquery/v2/projects/p/datasets/sales/tables/${t}rw:testIamPermissions" \
    --arg auth "Bearer $(common_token writer)" 'map(select(.path == $path and .auth == $auth
      and .body == {permissions: ["bigquery.tables.updateData"]})) | length == 1'
  run runner_require "bq:p:sales.${t}ro:write"
  [ "${status}" -eq 77 ]
  grep -q "require=denied identity=writer@p.iam.gserviceaccount.com resource=bq:p:sales.${t}ro missing=bigquery.tables.updateData" <<<"${output}"
  grep -q "fix=\"grant roles/bigquery.dataEditor on table p:sales.${t}ro (or its dataset) to writer@p.iam.gserviceaccount.com\"" <<<"${output}"
  run runner_require "bq:p:sales.${t}none:write"
  [ "${status}" -eq 77 ]
  grep -q 'missing=bigquery.tables.updateData' <<<"${output}"
}

@test "require bq: table read checks bigquery.tables.getData the same way" {
  local t="orders_t${BATS_TEST_NUMBER}_"
  common_as reader
  run runner_require "bq:p:sales.${t}ro:read"
  [ "${status}" -eq 0 ]
  grep -q "require=ok resource=bq:p:sales.${t}ro perm=read checked=bigquery.tables.get,bigquery.tables.getData" <<<"${output}"
  run runner_require "bq:p:sales.${t}none:read"
  [ "${status}" -eq 77 ]
  grep -q "require=denied identity=reader@p.iam.gserviceaccount.com resource=bq:p:sales.${t}none missing=bigquery.tables.getData" <<<"${output}"
  grep -q 'fix="grant roles/bigquery.dataViewer on table' <<<"${output}"
}

@test "require bq: a failing testIamPermissions is unavailable (temporary, 75), not ok" {
  common_as writer
  export RUNNER_SLEEP=true
  run runner_require "bq:p:sales.orders_t${BATS_TEST_NUMBER}_broken:write"
  [ "${status}" -eq 75 ]
  grep -q 'require=unavailable .* http=500 check=testIamPermissions temporary=true' <<<"${output}"
  [ "$(stub_requests | grep -c _broken)" -eq 5 ]  # retried before giving up
  refute_grep 'require=ok'
  RUNNER_BQ_API_BASE="http://127.0.0.1:$(_common_free_port)"  # nothing listens there
  run runner_require "bq:p:sales.orders_t${BATS_TEST_NUMBER}_rw:write"
  [ "${status}" -eq 75 ]
  grep -q 'require=unavailable .* http=000 check=testIamPermissions' <<<"${output}"
}

@test "require bq: a spec without project, with a bad dataset name or permission is rejected (64)" {
  common_as writer
  local spec
  for spec in bq:sales:read bq::sales:read bq:p:sa-les:read bq:p:sales.:write; do
    run runner_require "${spec}"
    [ "${status}" -eq 64 ]
    grep -q 'require=bad-spec .* fix="use bq:PROJECT:DATASET\[.TABLE\]:read|write"' <<<"${output}"
  done
  run runner_require bq:p:sales:admin
  [ "${status}" -eq 64 ]
  grep -q 'fix="use :read or :write"' <<<"${output}"
  [ ! -e "${FAKE_BQ_CALLS}" ]
}
