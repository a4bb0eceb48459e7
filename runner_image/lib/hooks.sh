# shellcheck shell=bash
# Cleanup hooks that run on success, failure and SIGTERM/SIGINT, in reverse order, each once.

_RUNNER_HOOKS=()
_RUNNER_HOOKS_INSTALLED=""
_RUNNER_HOOKS_RAN=""

_runner_run_hooks() {
  local status=$? i
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  if [[ -n "${_RUNNER_HOOKS_RAN}" ]]; then
    { _runner_xt_restore "${status}"; return; } 2>/dev/null
  fi
  _RUNNER_HOOKS_RAN=1
  for ((i = ${#_RUNNER_HOOKS[@]} - 1; i >= 0; i--)); do
    runner_log info "on_exit=run hook=$((i + 1)) status=${status}"
    _runner_as_caller eval "${_RUNNER_HOOKS[i]}" || runner_log warn "on_exit=failed hook=$((i + 1))"
  done
  { _runner_xt_restore "${status}"; } 2>/dev/null
}

_runner_on_signal() {
  { set +x; } 2>/dev/null
  local sig="$1" code="$2"
  runner_log warn "signal=${sig} action=cleanup"
  trap - EXIT
  _runner_step_interrupted "${code}"
  _runner_run_hooks || true
  exit "${code}"
}

# _runner_signal_traps: install the TERM/INT handlers (step records, then hooks, then exit 143/130).
_runner_signal_traps() {
  trap '_runner_on_signal TERM 143' TERM
  trap '_runner_on_signal INT 130' INT
}

# _runner_signal_traps_default: install them only when the script set no TERM trap of its own (step uses this
#   so that a step interrupted by SIGTERM is recorded failed).
_runner_signal_traps_default() {
  [[ -n "$(trap -p TERM)" ]] || _runner_signal_traps
}

# runner_on_exit CMD [ARGS...]
#   Register a cleanup command. All registered commands run once when the script exits (success or
#   failure) or gets SIGTERM/SIGINT, last registered first. A failing hook is logged, not fatal.
#   Installs the EXIT/TERM/INT traps on first use (it replaces traps the script set before).
runner_on_exit() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local quoted
  printf -v quoted '%q ' "$@"
  _RUNNER_HOOKS+=("${quoted}")
  if [[ -z "${_RUNNER_HOOKS_INSTALLED}" ]]; then
    _RUNNER_HOOKS_INSTALLED=1
    trap '_runner_run_hooks' EXIT
    _runner_signal_traps
  fi
  { _runner_xt_restore 0; } 2>/dev/null
}
