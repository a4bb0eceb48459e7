#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is matched literally
# The runner image's package list (runner_image/apt-packages.txt) against today's Debian archive
# (local/image/check_packages.sh, run by `make image-check`), and the local image built from the same
# Dockerfile and list. The archive is the real one (the host's Debian mirror): nothing is faked.

setup_file() {
  BATS_REPO_ROOT="$(cd "${BATS_TEST_DIRNAME}/../.." && pwd)"
  export BATS_REPO_ROOT
  # One apt state for the file: the first check downloads the package lists, the others reuse them.
  export SR_APT_CHECK_DIR="${BATS_FILE_TMPDIR}/apt"
  # The real list, checked once for the file (its output is read by two tests).
  local rc=0
  bash "${BATS_REPO_ROOT}/local/image/check_packages.sh" >"${BATS_FILE_TMPDIR}/served.txt" 2>&1 || rc=$?
  printf '%s\n' "${rc}" >"${BATS_FILE_TMPDIR}/served.rc"
}

setup() {
  CHECK="${BATS_REPO_ROOT}/local/image/check_packages.sh"
  LIST="${BATS_TEST_TMPDIR}/apt-packages.txt"
}

# _list LINE...: write a package list fixture.
_list() {
  printf '%s\n' "$@" >"${LIST}"
}

@test "the runner image's package list resolves against today's archive for the Dockerfile's release" {
  output="$(cat "${BATS_FILE_TMPDIR}/served.txt")"
  echo "${output}"
  [ "$(cat "${BATS_FILE_TMPDIR}/served.rc")" -eq 0 ]
  [[ "${output}" == *"served by bookworm"* ]]
  local name
  for name in bash ca-certificates curl jq openssl postgresql-client-15 procps python3 gnupg; do
    [[ "${output}" == *$'\n'"${name} "* ]]
  done
}

@test "the exact revisions the old Dockerfile pinned fail, each named with the version the archive serves" {
  _list jq=1.6-2.1+deb12u1 curl=7.88.1-10+deb12u14 openssl=3.0.19-1~deb12u2 \
    postgresql-client-15=15.18-0+deb12u1
  run bash "${CHECK}" "${LIST}"
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"jq: the list wants 1.6-2.1+deb12u1; bookworm serves 1.6-2.1+deb12u"* ]]
  [[ "${output}" == *"curl: the list wants 7.88.1-10+deb12u14; bookworm serves 7.88.1-10+deb12u"* ]]
  [[ "${output}" == *"openssl: the list wants 3.0.19-1~deb12u2; bookworm serves 3.0."* ]]
  [[ "${output}" == *"postgresql-client-15: the list wants 15.18-0+deb12u1; bookworm serves 15."* ]]
  [[ "${output}" == *"FAILED"* ]]
}

@test "a major-version glob the release does not serve fails with the version it does serve" {
  _list curl jq=1.7*
  run bash "${CHECK}" "${LIST}"
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"jq: the list wants 1.7*; bookworm serves 1.6-"* ]]
  [[ "${output}" == *$'\n'"curl "* ]]
}

@test "a package the release does not serve fails by name" {
  _list jq no-such-package-in-debian
  run bash "${CHECK}" "${LIST}"
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"no-such-package-in-debian: not served by bookworm"* ]]
}

@test "packages that resolve one by one but conflict together fail with apt's reason" {
  _list exim4-daemon-light exim4-daemon-heavy
  run bash "${CHECK}" "${LIST}"
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"resolve one by one but not together"* ]]
  [[ "${output}" == *"Conflicts: mail-transport-agent"* ]]
}

@test "build-only packages are checked too" {
  _list "build:no-such-build-tool=1*"
  run bash "${CHECK}" "${LIST}"
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"no-such-build-tool: not served by bookworm"* ]]
}

@test "the release checked is the one the Dockerfile's BASE_IMAGE names" {
  printf 'ARG BASE_IMAGE=debian:trixie-slim@sha256:%064d\nFROM ${BASE_IMAGE}\n' 0 >"${BATS_TEST_TMPDIR}/Dockerfile"
  _list jq=1.6*
  SR_APT_CHECK_DIR="${BATS_TEST_TMPDIR}/apt" SR_DOCKERFILE="${BATS_TEST_TMPDIR}/Dockerfile" run bash "${CHECK}" "${LIST}"
  [ "${status}" -eq 1 ]
  [[ "${output}" == *"jq: the list wants 1.6*; trixie serves 1.7"* ]]
}

@test "a Dockerfile whose base is not a Debian image cannot be checked" {
  printf 'ARG BASE_IMAGE=alpine:3.20\nFROM ${BASE_IMAGE}\n' >"${BATS_TEST_TMPDIR}/Dockerfile"
  _list jq
  SR_DOCKERFILE="${BATS_TEST_TMPDIR}/Dockerfile" run bash "${CHECK}" "${LIST}"
  [ "${status}" -eq 2 ]
  [[ "${output}" == *"no ARG BASE_IMAGE=debian:<codename>"* ]]
}

@test "the Dockerfile installs Debian packages only from the list, and the local image is built from it" {
  local dockerfile="${BATS_REPO_ROOT}/Dockerfile"
  grep -q 'COPY runner_image/apt-packages.txt' "${dockerfile}"
  # Every apt-get install takes the list's arrays or the Google Cloud CLI, never a literal Debian package.
  run grep -E '^[^#]*apt-get install' "${dockerfile}"
  [ "${status}" -eq 0 ]
  while read -r line; do
    [[ "${line}" == *'"${runtime_pkgs[@]}"'* || "${line}" == *'"${build_pkgs[@]}"'* \
      || "${line}" == *'"google-cloud-cli=${GOOGLE_CLOUD_CLI_VERSION}-0"'* ]]
  done <<<"${output}"
  [ ! -e "${BATS_REPO_ROOT}/local/image/Containerfile" ]
  grep -q -- '-f "${ROOT}/Dockerfile"' "${BATS_REPO_ROOT}/local/image/build.sh"
}

@test "the local image carries every listed package at the version today's archive serves" {
  local image="${SR_IMAGE:-localhost/script-runner:local}" name spec want got
  export CONTAINERS_CONF="${BATS_REPO_ROOT}/local/image/containers.conf"
  if ! command -v podman >/dev/null 2>&1 || ! podman image exists "${image}"; then
    skip "${image} is not built (make image-check builds it)"
  fi
  [ "$(cat "${BATS_FILE_TMPDIR}/served.rc")" -eq 0 ]
  local served
  served="$(cat "${BATS_FILE_TMPDIR}/served.txt")"
  got="$(podman run --rm --pull=never --network none --entrypoint dpkg-query "${image}" \
    -W -f '${Package} ${Version}\n')"
  while read -r spec; do
    name="${spec%%=*}"
    [[ "${name}" == build:* ]] && continue
    want="$(awk -v n="${name}" '$1 == n {print $3}' <<<"${served}")"
    [[ -n "${want}" ]]
    grep -qxF "${name} ${want}" <<<"${got}" || {
      echo "${image} has $(grep "^${name} " <<<"${got}" || echo "no ${name}"); the archive serves ${want} (make image rebuilds it)"
      return 1
    }
  done < <(awk '!/^[[:space:]]*(#|$)/ {print $1}' "${BATS_REPO_ROOT}/runner_image/apt-packages.txt")
}
