# shellcheck shell=bash
# Restartable state in GCS: checkpointed steps, once-markers and done-markers. Every claim is a
# conditional write (ifGenerationMatch), so two attempts never both own the same step.

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

# Write a step record; prints the new generation. $1 object, $2 match, $3 status, $4 extra jq args.
_runner_step_write() {
  local object="$1" match="$2" status="$3" secs="${4:-}" tmp rc=0
  tmp="$(mktemp)"
  jq -n --arg status "${status}" --arg attempt "${RUNNER_TRY_NUMBER:-0}" --arg owner "${HOSTNAME:-$$}-$$" \
    --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg secs "${secs}" \
    '{"status": $status, "try": ($attempt|tonumber), "owner": $owner, "at": $at, "secs": $secs}' >"${tmp}"
  runner_gcs_put "${RUNNER_STATE_BUCKET}" "${object}" "${tmp}" "${match}" || rc=$?
  rm -f "${tmp}"
  return "${rc}"
}

# runner_step NAME -- CMD...
#   Run CMD as a checkpointed step. State lives at
#   $RUNNER_STATE_ROOT/state/<script>/<logical date>/<NAME>. A step already done in an earlier attempt of
#   the same run date is skipped. A step left running by an earlier try is taken over; one running in
#   another attempt of the same try right now is not: that returns 73 (RUNNER_EXIT_CLAIMED).
#   Returns CMD's exit code (the step is recorded failed), 0 when skipped or done.
runner_step() {
  local name="$1" object meta status try gen claim_gen code=0 start
  shift
  [[ "${1:-}" == "--" ]] && shift
  _runner_state_available "step=${name}" || { "$@"; return; }
  object="$(_runner_state_object state "${RUNNER_SCRIPT_PATH}/${RUNNER_LOGICAL_DATE:-undated}/${name}")"
  if meta="$(runner_gcs_stat "${RUNNER_STATE_BUCKET}" "${object}")"; then
    gen="$(jq -r .generation <<<"${meta}")"
    local body
    body="$(mktemp)"
    runner_gcs_get "${RUNNER_STATE_BUCKET}" "${object}" "${body}" "${gen}" || true
    status="$(jq -r '.status // ""' "${body}" 2>/dev/null || true)"
    try="$(jq -r '.["try"] // 0' "${body}" 2>/dev/null || echo 0)"
    rm -f "${body}"
    if [[ "${status}" == "done" ]]; then
      runner_log info "step=${name} status=skipped reason=done-earlier"
      return 0
    fi
    if [[ "${status}" == "running" && "${try}" -ge "${RUNNER_TRY_NUMBER:-0}" ]]; then
      runner_log error "step=${name} status=claimed reason=\"another attempt (try ${try}) is running it\""
      return "${RUNNER_EXIT_CLAIMED}"
    fi
  else
    code=$?
    [[ ${code} -eq 1 ]] || return "${code}"
    gen=0
  fi
  code=0
  claim_gen="$(_runner_step_write "${object}" "${gen}" running)" || code=$?
  if [[ ${code} -eq 2 ]]; then
    runner_log error "step=${name} status=claimed reason=\"another attempt claimed it first\""
    return "${RUNNER_EXIT_CLAIMED}"
  elif [[ ${code} -ne 0 ]]; then
    return "${code}"
  fi
  runner_log info "step=${name} status=running"
  start="${SECONDS}"
  "$@" || code=$?
  local secs=$((SECONDS - start))
  if [[ ${code} -eq 0 ]]; then
    _runner_step_write "${object}" "${claim_gen}" "done" "${secs}" >/dev/null || runner_log warn "step=${name} record=not-saved"
    runner_log info "step=${name} status=done secs=${secs}"
  else
    _runner_step_write "${object}" "${claim_gen}" failed "${secs}" >/dev/null || true
    runner_log error "step=${name} status=failed exit=${code} secs=${secs}"
  fi
  return "${code}"
}

# runner_once KEY -- CMD...
#   Run CMD only if the marker $RUNNER_STATE_ROOT/once/<script>/<KEY> does not exist; create it after
#   CMD succeeds. Returns CMD's code, 0 when skipped.
runner_once() {
  local key="$1" object code=0 tmp
  shift
  [[ "${1:-}" == "--" ]] && shift
  _runner_state_available "once=${key}" || { "$@"; return; }
  object="$(_runner_state_object once "${RUNNER_SCRIPT_PATH}/${key}")"
  if runner_gcs_stat "${RUNNER_STATE_BUCKET}" "${object}" >/dev/null; then
    runner_log info "once=${key} status=skipped reason=marker-exists"
    return 0
  fi
  "$@" || code=$?
  if [[ ${code} -eq 0 ]]; then
    tmp="$(mktemp)"
    jq -n --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg run "${RUNNER_RUN_ID:-}" '{at: $at, run: $run}' >"${tmp}"
    runner_gcs_put "${RUNNER_STATE_BUCKET}" "${object}" "${tmp}" 0 >/dev/null || true
    rm -f "${tmp}"
    runner_log info "once=${key} status=done"
  fi
  return "${code}"
}

# runner_done_marker_object MD5_BASE64
#   Print the done-marker object for this script, content hash and logical date.
runner_done_marker_object() {
  local hex
  hex="$(printf '%s' "$1" | base64 -d 2>/dev/null | od -An -tx1 | tr -d ' \n')"
  _runner_state_object "done" "${RUNNER_SCRIPT_PATH}/${hex:-nohash}/${RUNNER_LOGICAL_DATE:-undated}"
}
