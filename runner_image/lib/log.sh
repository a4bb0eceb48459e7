# shellcheck shell=bash
# Structured log lines: "[runner] ts=… level=… key=value …". Errors and warnings go to stderr.

# Exit codes shared by the library and the entrypoint (docs/DESIGN.md); used by the files that source this.
# shellcheck disable=SC2034
readonly RUNNER_EXIT_CONFIG=64     # bad configuration: fatal
readonly RUNNER_EXIT_CHECKSUM=65   # script content does not match the discovered md5/generation: fatal
readonly RUNNER_EXIT_CLAIMED=73    # a step is being run by another attempt right now
readonly RUNNER_EXIT_TEMPFAIL=75   # temporary failure (fetch, GCS): retryable
readonly RUNNER_EXIT_NOPERM=77     # IAM preflight found a missing permission: fatal
readonly RUNNER_EXIT_SKIPPED=99    # done-marker present: nothing to do

# _runner_utc_now VAR
#   Set VAR to the current time in UTC, as `date -u +%Y-%m-%dT%H:%M:%SZ` prints it, without a fork: bash's
#   printf %(...)T under a TZ given to that one builtin (bash re-reads TZ for it and restores the caller's
#   TZ, exported or not, afterwards; a `local TZ` would not be seen when TZ is not exported). Returns 0.
_runner_utc_now() {
  TZ=UTC0 printf -v "$1" '%(%Y-%m-%dT%H:%M:%SZ)T' -1
}

# runner_log LEVEL [key=value|text]...
#   Print one structured line. LEVEL is debug|info|warn|error.
#   Outputs: the line on stdout (info/debug) or stderr (warn/error). Returns 0.
runner_log() {
  local level="$1"
  shift
  local line ts
  _runner_utc_now ts
  line="[runner] ts=${ts} level=${level} $*"
  case "${level}" in
    warn | error) printf '%s\n' "${line}" >&2 ;;
    *) printf '%s\n' "${line}" ;;
  esac
}

# Tracing. A script may run with `set -x`; the library's internals (the bearer token, the Authorization
# header) must not be traced. Every public function starts with
#   { local _runner_xt="$-"; set +x; } 2>/dev/null
# (the braces' own trace goes to /dev/null), runs its body with tracing off, and ends with
#   { _runner_xt_restore "${rc}"; } 2>/dev/null
# The caller's own commands (step/once/retry/on_exit) run traced again through _runner_as_caller.

# _runner_xt_restore RC: turn tracing back on when the calling public function found it on; returns RC.
_runner_xt_restore() {
  [[ "${_runner_xt:-}" != *x* ]] || set -x
  return "$1"
}

# _runner_as_caller CMD...: run the script's own CMD with the script's tracing setting; returns CMD's code.
_runner_as_caller() {
  local rc=0
  if [[ "${_runner_xt:-}" == *x* ]]; then
    set -x
    "$@" || rc=$?
    { set +x; } 2>/dev/null
  else
    "$@" || rc=$?
  fi
  return "${rc}"
}

# runner_die CODE MESSAGE...
#   Log an error and exit with CODE.
runner_die() {
  local code="$1"
  shift
  runner_log error "$*"
  exit "${code}"
}
