# shellcheck shell=bash
# gcs-script-runner helper library. Scripts load it with: source "$RUNNER_LIB"
#
# Public functions are prefixed runner_; the short names in the README (retry, step, once, on_exit, notify,
# require, log) are aliases defined only when the name is free. Sourcing sets no shell options of its own.

# Guard against double sourcing.
if [[ -n "${_RUNNER_LIB_LOADED:-}" ]]; then
  return 0
fi
readonly _RUNNER_LIB_LOADED=1
# Loading is not traced either (a script may `set -x` before sourcing); the setting is restored at the end.
{ _RUNNER_SOURCE_XT="$-"; set +x; } 2>/dev/null
# The directory as `cd "$(dirname …)" && pwd` prints it; without its two forks when the path is already
# absolute and plain (no . or .. component, no //) and cd is logical.
_RUNNER_LIB_DIR="${BASH_SOURCE[0]%/*}"
if [[ "${BASH_SOURCE[0]}" != /*/* || "${_RUNNER_LIB_DIR}/" == *"/./"* || "${_RUNNER_LIB_DIR}/" == *"/../"* ||
  "${_RUNNER_LIB_DIR}" == *//* || $- == *P* ]]; then
  _RUNNER_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fi
readonly _RUNNER_LIB_DIR

# shellcheck source=runner_image/lib/log.sh
source "${_RUNNER_LIB_DIR}/log.sh"
# shellcheck source=runner_image/lib/gcs.sh
source "${_RUNNER_LIB_DIR}/gcs.sh"
# shellcheck source=runner_image/lib/metadata.sh
source "${_RUNNER_LIB_DIR}/metadata.sh"
# shellcheck source=runner_image/lib/identity.sh
source "${_RUNNER_LIB_DIR}/identity.sh"
# shellcheck source=runner_image/lib/secrets.sh
source "${_RUNNER_LIB_DIR}/secrets.sh"
# shellcheck source=runner_image/lib/retry.sh
source "${_RUNNER_LIB_DIR}/retry.sh"
# shellcheck source=runner_image/lib/hooks.sh
source "${_RUNNER_LIB_DIR}/hooks.sh"
# shellcheck source=runner_image/lib/state.sh
source "${_RUNNER_LIB_DIR}/state.sh"
# shellcheck source=runner_image/lib/notify.sh
source "${_RUNNER_LIB_DIR}/notify.sh"
# shellcheck source=runner_image/lib/require.sh
source "${_RUNNER_LIB_DIR}/require.sh"
# shellcheck source=runner_image/lib/usage.sh
source "${_RUNNER_LIB_DIR}/usage.sh"

# Short names, only where nothing of that name exists (a script's own function wins).
_runner_alias() {
  local short="$1" long="$2"
  if ! declare -F "${short}" >/dev/null && ! type -t "${short}" >/dev/null 2>&1; then
    eval "${short}() { ${long} \"\$@\"; }"
  fi
}
_runner_alias retry runner_retry
_runner_alias step runner_step
_runner_alias once runner_once
_runner_alias on_exit runner_on_exit
_runner_alias notify runner_notify
_runner_alias require runner_require
_runner_alias log runner_log
{ [[ "${_RUNNER_SOURCE_XT}" != *x* ]] || set -x; } 2>/dev/null
