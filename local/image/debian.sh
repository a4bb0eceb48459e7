# shellcheck shell=bash
# Debian archive helpers shared by build.sh (the local base image) and check_packages.sh (make image-check):
# which release the Dockerfile builds on, and which mirrors serve it. Sourced, not executed.

# debian_release DOCKERFILE: print the Debian release (codename) of the Dockerfile's default BASE_IMAGE,
#   e.g. `bookworm` for `ARG BASE_IMAGE=debian:bookworm-slim@sha256:…`.
#   Returns 1 (with a message on stderr) when the default is not a debian:<codename>… image.
debian_release() {
  local dockerfile="$1" release
  release="$(sed -nE 's/^ARG BASE_IMAGE=(docker\.io\/)?(library\/)?debian:([a-z]+).*/\3/p' "${dockerfile}" | head -1)"
  if [[ -z "${release}" ]]; then
    printf "debian_release: no ARG BASE_IMAGE=debian:<codename>... in %s\n" "${dockerfile}" >&2
    return 1
  fi
  printf '%s\n' "${release}"
}

# _debian_host_uri KIND: the URIs of the host's deb822 source whose Suites are the main archive (KIND=main)
#   or the security archive (KIND=security); empty when the host has no such source.
_debian_host_uri() {
  local kind="$1" file=/etc/apt/sources.list.d/debian.sources
  [[ -r "${file}" ]] || return 0
  awk -v kind="${kind}" '
    function flush() {
      if (uri != "" && ((kind == "security") == (suites ~ /-security/))) { print uri; found = 1 }
      uri = ""; suites = ""
    }
    found { exit }
    /^[[:space:]]*$/ { flush(); next }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { suites = $0 }
    END { if (!found) flush() }
  ' "${file}" | head -1
}

# debian_mirror: the Debian archive to use: SR_DEBIAN_MIRROR, else the one the host's apt sources name.
#   Returns 1 (with the fix on stderr) when neither names one.
debian_mirror() {
  local uri="${SR_DEBIAN_MIRROR:-}"
  [[ -n "${uri}" ]] || uri="$(_debian_host_uri main)"
  _debian_require_uri "${uri}" SR_DEBIAN_MIRROR
}

# debian_security_mirror: the security archive: SR_DEBIAN_SECURITY_MIRROR, else the host's.
#   Returns 1 (with the fix on stderr) when neither names one.
debian_security_mirror() {
  local uri="${SR_DEBIAN_SECURITY_MIRROR:-}"
  [[ -n "${uri}" ]] || uri="$(_debian_host_uri security)"
  _debian_require_uri "${uri}" SR_DEBIAN_SECURITY_MIRROR
}

# _debian_require_uri URI VARIABLE: print URI, or say which variable to set and return 1 when it is empty.
_debian_require_uri() {
  if [[ -z "$1" ]]; then
    printf '[image] no Debian archive in the host apt sources: set %s to its URL\n' "$2" >&2
    return 1
  fi
  printf '%s\n' "$1"
}

# debian_sources_list RELEASE: print a one-line-style sources.list for RELEASE with the suites the Debian
#   container images use: RELEASE, RELEASE-updates and RELEASE-security (main only).
debian_sources_list() {
  local release="$1" mirror security
  mirror="$(debian_mirror)"
  security="$(debian_security_mirror)"
  printf 'deb %s %s main\n' "${mirror}" "${release}" "${mirror}" "${release}-updates"
  printf 'deb %s %s main\n' "${security}" "${release}-security"
}
