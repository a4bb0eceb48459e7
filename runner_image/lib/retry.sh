# shellcheck shell=bash
# Retry with exponential backoff and full jitter.

# runner_retry [--attempts N] [--base S] [--max S] [--on CODES] -- CMD...
#   Run CMD until it succeeds or N attempts are spent (default 5). Before attempt k+1 it sleeps a random
#   time in [0, min(max, base * 2^k)] seconds (full jitter; base 1, max 60). --on 1,75 retries only those
#   exit codes; any other code is returned at once.
#   The sleep command is $RUNNER_SLEEP (default: sleep), so tests can observe delays without waiting.
#   Returns 0, or the last exit code of CMD.
runner_retry() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local rc=0
  _runner_retry "$@" || rc=$?
  { _runner_xt_restore "${rc}"; } 2>/dev/null
}

_runner_retry() {
  local attempts=5 base=1 max=60 on="" code=0 attempt=1 cap delay
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --attempts) attempts="$2"; shift 2 ;;
      --base) base="$2"; shift 2 ;;
      --max) max="$2"; shift 2 ;;
      --on) on=",$2,"; shift 2 ;;
      --) shift; break ;;
      *) runner_log error "retry: unknown option $1 (usage: retry [--attempts N] [--base S] [--max S] [--on CODES] -- cmd...)"; return 2 ;;
    esac
  done
  if [[ $# -eq 0 ]]; then
    runner_log error "retry: no command given"
    return 2
  fi
  while true; do
    code=0
    _runner_as_caller "$@" || code=$?
    if [[ ${code} -eq 0 ]]; then
      [[ ${attempt} -eq 1 ]] || runner_log info "retry=ok attempt=${attempt} cmd=$1"
      return 0
    fi
    if [[ -n "${on}" && "${on}" != *",${code},"* ]]; then
      runner_log warn "retry=giving-up attempt=${attempt} exit=${code} reason=not-retryable cmd=$1"
      return "${code}"
    fi
    if [[ ${attempt} -ge ${attempts} ]]; then
      runner_log error "retry=exhausted attempts=${attempt} exit=${code} cmd=$1"
      return "${code}"
    fi
    cap="$(awk -v b="${base}" -v k="$((attempt - 1))" -v m="${max}" 'BEGIN { c = b * 2 ^ k; if (c > m) c = m; print c }')"
    delay="$(awk -v c="${cap}" -v r="${RANDOM}" 'BEGIN { printf "%.3f", c * r / 32767 }')"
    runner_log warn "retry=backoff attempt=${attempt} exit=${code} sleep=${delay} cap=${cap} cmd=$1"
    ${RUNNER_SLEEP:-sleep} "${delay}"
    attempt=$((attempt + 1))
  done
}
