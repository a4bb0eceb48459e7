# shellcheck shell=bash
# Cleanup hooks that run on success, failure and SIGTERM/SIGINT, in reverse order, each once.

_RUNNER_HOOKS=()
_RUNNER_HOOKS_INSTALLED=""
_RUNNER_HOOKS_RAN=""

_runner_run_hooks() {
  local status=$? i
  [[ -z "${_RUNNER_HOOKS_RAN}" ]] || return "${status}"
  _RUNNER_HOOKS_RAN=1
  for ((i = ${#_RUNNER_HOOKS[@]} - 1; i >= 0; i--)); do
    runner_log info "on_exit=run hook=$((i + 1)) status=${status}"
    eval "${_RUNNER_HOOKS[i]}" || runner_log warn "on_exit=failed hook=$((i + 1))"
  done
  return "${status}"
}

_runner_on_signal() {
  local sig="$1" code="$2"
  runner_log warn "signal=${sig} action=cleanup"
  trap - EXIT
  _runner_run_hooks || true
  exit "${code}"
}

# runner_on_exit CMD [ARGS...]
#   Register a cleanup command. All registered commands run once when the script exits (success or
#   failure) or gets SIGTERM/SIGINT, last registered first. A failing hook is logged, not fatal.
#   Installs the EXIT/TERM/INT traps on first use (it replaces traps the script set before).
runner_on_exit() {
  local quoted
  printf -v quoted '%q ' "$@"
  _RUNNER_HOOKS+=("${quoted}")
  if [[ -z "${_RUNNER_HOOKS_INSTALLED}" ]]; then
    _RUNNER_HOOKS_INSTALLED=1
    trap '_runner_run_hooks' EXIT
    trap '_runner_on_signal TERM 143' TERM
    trap '_runner_on_signal INT 130' INT
  fi
}
