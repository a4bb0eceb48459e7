# shellcheck shell=bash
# Restartable state in GCS: checkpointed steps and once-markers. Every claim is a conditional write
# (ifGenerationMatch), so two attempts never both own the same step. (Done-markers are the Airflow side's:
# the task writes and reads them, never the pod; see script_runner/run/done_markers.py.)

_runner_state_object() {
  printf '%s/%s/%s' "${RUNNER_STATE_ROOT:-script-runner}" "$1" "$2"
}

# True when state can be kept; otherwise warns (the command then runs without a checkpoint).
_runner_state_available() {
  if [[ -z "${RUNNER_STATE_BUCKET:-}" || -z "${RUNNER_SCRIPT_PATH:-}" ]]; then
    runner_log warn "state=unavailable what=$1 reason=\"RUNNER_STATE_BUCKET/RUNNER_SCRIPT_PATH unset\" action=run-without-checkpoint"
    return 1
  fi
}

# _runner_md5_hex MD5_BASE64: the hex form of a GCS md5 ("" when empty or not base64).
_runner_md5_hex() {
  printf '%s' "$1" | base64 -d 2>/dev/null | od -An -tx1 | tr -d ' \n'
}

# Write a step record; prints the new generation. $1 object, $2 match, $3 status, $4 secs, $5 exit code.
_runner_step_write() {
  local object="$1" match="$2" status="$3" secs="${4:-}" code="${5:-}" tmp rc=0
  tmp="$(mktemp)"
  jq -n --arg status "${status}" --arg attempt "${RUNNER_TRY_NUMBER:-0}" --arg owner "${HOSTNAME:-$$}-$$" \
    --arg run "${RUNNER_RUN_ID:-}" --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg secs "${secs}" \
    --arg exit "${code}" \
    '{"status": $status, "run": $run, "try": ($attempt|tonumber), "owner": $owner, "at": $at, "secs": $secs,
      "exit": $exit}' >"${tmp}"
  runner_gcs_put "${RUNNER_STATE_BUCKET}" "${object}" "${tmp}" "${match}" || rc=$?
  rm -f "${tmp}"
  return "${rc}"
}

# _runner_step_running NAME RUN TRY: decide about a step another process recorded `running`. Returns 0 to
#   claim it: a record of this same attempt (same run and try: its pod is gone, e.g. evicted, and this is
#   the rescheduled pod) or of an older try of this run (Airflow starts try N+1 after try N ended).
#   Returns 73 for a record of another run or of a later try: that may be alive, so it is left alone.
_runner_step_running() {
  local name="$1" run="$2" try="$3" mine="${RUNNER_TRY_NUMBER:-0}"
  if [[ "${run}" == "${RUNNER_RUN_ID:-}" && "${try}" -eq "${mine}" ]]; then
    runner_log warn "step=${name} status=reclaimed reason=\"left running by an earlier pod of this attempt (run ${run} try ${try})\""
  elif [[ "${run}" == "${RUNNER_RUN_ID:-}" && "${try}" -lt "${mine}" ]]; then
    runner_log warn "step=${name} status=taken-over reason=\"left running by try ${try} of this run\""
  else
    runner_log error "step=${name} status=claimed reason=\"run ${run} try ${try} is running it\"" \
      "fix=\"if that run is over, delete gs://${RUNNER_STATE_BUCKET}/${_RUNNER_STEP_OBJECT}\""
    return "${RUNNER_EXIT_CLAIMED}"
  fi
}

# _runner_step_own_claim OBJECT: print the generation of OBJECT when it holds this process's own `running`
#   claim (a conditional write that took effect, whose reply was lost, and whose retry then failed its
#   precondition). Returns 1 otherwise.
_runner_step_own_claim() {
  local meta gen body mine
  meta="$(runner_gcs_stat "${RUNNER_STATE_BUCKET}" "$1")" || return 1
  gen="$(jq -r .generation <<<"${meta}")"
  body="$(mktemp)"
  if ! runner_gcs_get "${RUNNER_STATE_BUCKET}" "$1" "${body}" "${gen}"; then
    rm -f "${body}"
    return 1
  fi
  mine="$(jq -r --arg owner "${HOSTNAME:-$$}-$$" --arg run "${RUNNER_RUN_ID:-}" --arg attempt "${RUNNER_TRY_NUMBER:-0}" \
    '.status == "running" and .owner == $owner and .run == $run and (.["try"]|tostring) == $attempt' "${body}" 2>/dev/null || true)"
  rm -f "${body}"
  [[ "${mine}" == true ]] || return 1
  printf '%s' "${gen}"
}

# runner_step NAME -- CMD...
#   Run CMD as a checkpointed step. State lives at
#   $RUNNER_STATE_ROOT/state/<script>/<interval>/<content md5 hex>/<NAME>, <interval> being the run's
#   RUNNER_INTERVAL (its data interval, e.g. 20261204T1200Z-20261204T1300Z; RUNNER_LOGICAL_DATE when an older
#   DAG gives none): a step done by an earlier attempt of the same interval and the same script content is
#   skipped; another interval (the next hourly run) or a changed script runs all its steps.
#   A `running` record of this attempt (same run and try: a pod evicted mid-step) or of an older try of this
#   run is reclaimed; one of another run or a later try returns 73 (RUNNER_EXIT_CLAIMED). On SIGTERM/SIGINT
#   during CMD the record is marked failed. GCS errors are retried, then returned (75/77): the step never
#   runs on an unknown answer.
#   Returns CMD's exit code (the step is recorded failed), 0 when skipped or done.
runner_step() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local rc=0
  _runner_step "$@" || rc=$?
  { _runner_xt_restore "${rc}"; } 2>/dev/null
}

_runner_step() {
  local name="$1" object meta status run try gen claim_gen code=0 start version body
  shift
  [[ "${1:-}" == "--" ]] && shift
  _runner_state_available "step=${name}" || { _runner_as_caller "$@"; return; }
  version="$(_runner_md5_hex "${RUNNER_SCRIPT_MD5:-}")"
  object="$(_runner_state_object state "${RUNNER_SCRIPT_PATH}/$(runner_interval)/${version:-unversioned}/${name}")"
  local _RUNNER_STEP_OBJECT="${object}"
  gen=0
  meta="$(runner_gcs_stat "${RUNNER_STATE_BUCKET}" "${object}")" || code=$?
  if [[ ${code} -eq 0 ]]; then
    gen="$(jq -r .generation <<<"${meta}")"
    body="$(mktemp)"
    runner_gcs_get "${RUNNER_STATE_BUCKET}" "${object}" "${body}" "${gen}" || code=$?
    status="$(jq -r '.status // ""' "${body}" 2>/dev/null || true)"
    run="$(jq -r '.run // ""' "${body}" 2>/dev/null || true)"
    try="$(jq -r '.["try"] // 0' "${body}" 2>/dev/null || echo 0)"
    rm -f "${body}"
    if [[ ${code} -eq 1 ]]; then
      runner_log error "step=${name} status=claimed reason=\"its record changed while being read\""
      return "${RUNNER_EXIT_CLAIMED}"
    fi
  fi
  if [[ ${code} -ne 0 && ${code} -ne 1 ]]; then
    runner_log error "step=${name} status=unknown exit=${code} reason=\"its state could not be read: not running on an unknown answer\""
    return "${code}"
  fi
  if [[ "${status:-}" == "done" ]]; then
    runner_log info "step=${name} status=skipped reason=done-earlier"
    return 0
  fi
  if [[ "${status:-}" == "running" ]]; then
    _runner_step_running "${name}" "${run}" "${try}" || return $?
  fi
  code=0
  claim_gen="$(_runner_step_write "${object}" "${gen}" running)" || code=$?
  if [[ ${code} -eq 2 ]] && claim_gen="$(_runner_step_own_claim "${object}")"; then
    code=0  # our claim landed, its reply was lost and the retry found it: the step is ours
  fi
  if [[ ${code} -eq 2 ]]; then
    runner_log error "step=${name} status=claimed reason=\"another attempt claimed it first\""
    return "${RUNNER_EXIT_CLAIMED}"
  elif [[ ${code} -ne 0 ]]; then
    return "${code}"
  fi
  runner_log info "step=${name} status=running"
  start="${SECONDS}"
  local previous="${_RUNNER_STEP_ACTIVE:-}"
  _RUNNER_STEP_ACTIVE="${object} ${claim_gen} ${name} ${start}"
  _runner_signal_traps_default
  _runner_as_caller "$@" || code=$?
  _RUNNER_STEP_ACTIVE="${previous}"
  local secs=$((SECONDS - start))
  if [[ ${code} -eq 0 ]]; then
    _runner_step_write "${object}" "${claim_gen}" "done" "${secs}" 0 >/dev/null || runner_log warn "step=${name} record=not-saved"
    runner_log info "step=${name} status=done secs=${secs}"
  else
    _runner_step_write "${object}" "${claim_gen}" failed "${secs}" "${code}" >/dev/null || true
    runner_log error "step=${name} status=failed exit=${code} secs=${secs}"
  fi
  return "${code}"
}

# _runner_step_interrupted CODE: called by the signal handler; marks the step that is running failed.
_runner_step_interrupted() {
  local object gen name start
  [[ -n "${_RUNNER_STEP_ACTIVE:-}" ]] || return 0
  read -r object gen name start <<<"${_RUNNER_STEP_ACTIVE}"
  _RUNNER_STEP_ACTIVE=""
  RUNNER_GCS_ATTEMPTS=2 _runner_step_write "${object}" "${gen}" failed "$((SECONDS - start))" "$1" >/dev/null ||
    runner_log warn "step=${name} record=not-saved"
  runner_log error "step=${name} status=failed exit=$1 reason=signal"
}

# runner_once KEY -- CMD...
#   Run CMD only if the marker $RUNNER_STATE_ROOT/once/<script>/<KEY> does not exist; create it after
#   CMD succeeds. When GCS cannot say whether the marker exists (after retries), CMD does not run.
#   Returns CMD's code, 0 when skipped, 75/77 when the marker could not be checked.
runner_once() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local rc=0
  _runner_once "$@" || rc=$?
  { _runner_xt_restore "${rc}"; } 2>/dev/null
}

_runner_once() {
  local key="$1" object code=0 tmp
  shift
  [[ "${1:-}" == "--" ]] && shift
  _runner_state_available "once=${key}" || { _runner_as_caller "$@"; return; }
  object="$(_runner_state_object once "${RUNNER_SCRIPT_PATH}/${key}")"
  runner_gcs_stat "${RUNNER_STATE_BUCKET}" "${object}" >/dev/null || code=$?
  if [[ ${code} -eq 0 ]]; then
    runner_log info "once=${key} status=skipped reason=marker-exists"
    return 0
  elif [[ ${code} -ne 1 ]]; then
    runner_log error "once=${key} status=unknown exit=${code} reason=\"its marker could not be checked: not running on an unknown answer\""
    return "${code}"
  fi
  code=0
  _runner_as_caller "$@" || code=$?
  if [[ ${code} -eq 0 ]]; then
    tmp="$(mktemp)"
    jq -n --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg run "${RUNNER_RUN_ID:-}" '{at: $at, run: $run}' >"${tmp}"
    local put=0
    runner_gcs_put "${RUNNER_STATE_BUCKET}" "${object}" "${tmp}" 0 >/dev/null || put=$?
    rm -f "${tmp}"
    [[ ${put} -eq 0 || ${put} -eq 2 ]] || runner_log warn "once=${key} marker=not-written exit=${put}"
    runner_log info "once=${key} status=done"
  fi
  return "${code}"
}

# runner_interval
#   Print the run's unit of idempotency, path-safe: RUNNER_INTERVAL (set by the DAG from the run's data
#   interval), else RUNNER_LOGICAL_DATE (a DAG before intervals), else "undated".
runner_interval() {
  printf '%s' "${RUNNER_INTERVAL:-${RUNNER_LOGICAL_DATE:-undated}}"
}
