#!/usr/bin/env bash
# check_packages.sh [LIST]: resolve every Debian package of the runner image's list (default
# runner_image/apt-packages.txt) against today's archive for the release the Dockerfile builds on, as the
# image build would: RELEASE, RELEASE-updates and RELEASE-security. Uses the host's apt-get with a private
# state directory (no root, no container, nothing installed): `apt-get update`, each package's candidate
# version checked against the list's glob, then `apt-get install --dry-run` of the whole list.
# Prints one line per package: name, wanted (the list's glob or `any`), served (the archive's version).
# Cannot check: the Google Cloud CLI (google-cloud-cli=VERSION-0 from Google's apt repository, not reachable
# here) nor the base image digest (no registry here); the build in Cloud Build checks both.
# Env: SR_DOCKERFILE (default: the root Dockerfile), SR_APT_CHECK_DIR (apt state; default local/.run/apt-check),
#   SR_DEBIAN_MIRROR / SR_DEBIAN_SECURITY_MIRROR (default: the host's apt sources).
# Exit: 0 all resolve; 1 a package does not resolve (each one named with the version served); 2 cannot check
#   (no apt-get, the archive unreachable, no release in the Dockerfile).
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# shellcheck source=local/image/debian.sh
source "${ROOT}/local/image/debian.sh"

_check_log() { printf '[image-check] %s\n' "$*" >&2; }

# _check_specs LIST: the package specs of LIST (NAME or NAME=GLOB), `build:` prefixes dropped.
_check_specs() {
  awk '!/^[[:space:]]*(#|$)/ {sub(/^build:/, "", $1); print $1}' "$1"
}

# _check_apt ARGS...: apt-get/apt-cache with the private state directory and sources (set up by main).
_check_apt() {
  local tool="$1"
  shift
  "${tool}" "${_CHECK_APT_OPTS[@]}" "$@"
}

main() {
  local list="${1:-${ROOT}/runner_image/apt-packages.txt}"
  local dockerfile="${SR_DOCKERFILE:-${ROOT}/Dockerfile}"
  local dir="${SR_APT_CHECK_DIR:-${ROOT}/local/.run/apt-check}"
  local release spec name glob served failed=0
  local -a specs=() names=() exact=()
  local -A candidate=()

  command -v apt-get >/dev/null 2>&1 || { _check_log "apt-get is not installed: cannot check"; exit 2; }
  [[ -r "${list}" ]] || { _check_log "no package list at ${list}"; exit 2; }
  release="$(debian_release "${dockerfile}")" || exit 2
  mkdir -p "${dir}/lists/partial" "${dir}/cache/archives/partial" "${dir}/empty.d"
  : >"${dir}/status"
  : >"${dir}/preferences"
  debian_sources_list "${release}" | sed "s|^deb |deb [signed-by=${KEYRING}] |" >"${dir}/sources.list"
  _CHECK_APT_OPTS=(
    -o "Dir::Etc::SourceList=${dir}/sources.list" -o "Dir::Etc::SourceParts=${dir}/empty.d"
    -o "Dir::State::Lists=${dir}/lists" -o "Dir::State::status=${dir}/status" -o "Dir::Cache=${dir}/cache"
    -o "Dir::Etc::Preferences=${dir}/preferences" -o "Dir::Etc::PreferencesParts=${dir}/empty.d"
    -o Debug::NoLocking=true -o APT::Sandbox::User="$(id -un)" -o APT::Architecture="$(dpkg --print-architecture)"
  )
  if ! _check_apt apt-get -qq update >"${dir}/update.log" 2>&1 || grep -q '^[EW]:' "${dir}/update.log"; then
    _check_log "cannot read the ${release} archive at $(debian_mirror) / $(debian_security_mirror):"
    cat "${dir}/update.log" >&2
    exit 2
  fi

  mapfile -t specs < <(_check_specs "${list}")
  for spec in "${specs[@]}"; do names+=("${spec%%=*}"); done
  # One apt-cache call for all (each call rebuilds the cache: ~2 s). Unknown names print no block.
  while read -r name served; do
    candidate["${name}"]="${served}"
  done < <(_check_apt apt-cache policy "${names[@]}" 2>/dev/null \
    | awk '/^[^ ]/ {name = $0; sub(/:$/, "", name)} /^  Candidate:/ {print name, $2}')

  printf '%-24s %-10s %s\n' package wanted "served by ${release}"
  for spec in "${specs[@]}"; do
    name="${spec%%=*}"
    glob=""
    [[ "${spec}" == *=* ]] && glob="${spec#*=}"
    served="${candidate["${name}"]:-}"
    if [[ -z "${served}" || "${served}" == "(none)" ]]; then
      _check_log "${name}: not served by ${release} (${release}, ${release}-updates, ${release}-security)"
      failed=1
      continue
    fi
    # shellcheck disable=SC2053  # the list's version is a glob, matched as apt matches it
    if [[ -n "${glob}" && "${served}" != ${glob} ]]; then
      _check_log "${name}: the list wants ${glob}; ${release} serves ${served} (update runner_image/apt-packages.txt)"
      failed=1
      continue
    fi
    printf '%-24s %-10s %s\n' "${name}" "${glob:-any}" "${served}"
    exact+=("${name}=${served}")
  done

  if [[ ${failed} -eq 0 ]] \
    && ! _check_apt apt-get install --dry-run --no-install-recommends -q "${exact[@]}" >"${dir}/install.log" 2>&1; then
    _check_log "the packages resolve one by one but not together:"
    cat "${dir}/install.log" >&2
    failed=1
  fi
  if [[ ${failed} -ne 0 ]]; then
    _check_log "FAILED: the image build would fail on the packages above"
    exit 1
  fi
  _check_log "all ${#exact[@]} packages resolve against today's ${release} archive"
}

main "$@"
