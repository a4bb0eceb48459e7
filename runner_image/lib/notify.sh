# shellcheck shell=bash
# Structured events: a log line, and a JSON object in GCS that the run report collects.

# runner_notify LEVEL MESSAGE [key=value...]
#   Print an event line and store it at $RUNNER_STATE_ROOT/events/<run id>/<script>/<ts>.json.
#   Never fails the script: when GCS is unreachable it logs a warning. Returns 0.
runner_notify() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  _runner_notify "$@"
  { _runner_xt_restore 0; } 2>/dev/null
}

_runner_notify() {
  local level="${1:-info}" message="${2:-}" ts tmp kv
  shift 2 || shift $#
  runner_log "${level}" "event=notify msg=\"${message}\" $*"
  [[ -n "${RUNNER_STATE_BUCKET:-}" ]] || return 0
  ts="$(date -u +%Y%m%dT%H%M%S%N)"
  tmp="$(mktemp)"
  local -a fields=()
  for kv in "$@"; do fields+=(--arg "${kv%%=*}" "${kv#*=}"); done
  jq -n --arg level "${level}" --arg message "${message}" --arg script "${RUNNER_SCRIPT_PATH:-}" \
    --arg try "${RUNNER_TRY_NUMBER:-}" --arg ts "${ts}" "${fields[@]}" \
    '$ARGS.named' >"${tmp}"
  runner_gcs_put "${RUNNER_STATE_BUCKET}" \
    "${RUNNER_STATE_ROOT:-script-runner}/events/${RUNNER_RUN_ID:-manual}/${RUNNER_SCRIPT_PATH:-unknown}/${ts}.json" \
    "${tmp}" >/dev/null || runner_log warn "notify=not-stored reason=gcs"
  rm -f "${tmp}"
  return 0
}
