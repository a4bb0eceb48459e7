#!/usr/bin/env bash
# Build the local runner image (localhost/script-runner:local) for the podman kubelet, without a registry:
# debootstrap a Debian base, import it into podman, then build local/image/Containerfile on top.
# Skips when the inputs (Containerfile, runner_image/) have not changed since the last build.
# Exit 0 when the image is ready, 1 with the reason when it cannot be built here.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly IMAGE="${SR_IMAGE:-localhost/script-runner:local}"
readonly BASE_IMAGE="localhost/script-runner-base:latest"
readonly WORK="${ROOT}/local/.run/image"
export CONTAINERS_CONF="${ROOT}/local/image/containers.conf"

image_log() { printf '[image] %s\n' "$*" >&2; }

image_require() {
  local tool
  for tool in podman runc debootstrap; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
      image_log "${tool} is not installed (make sysdeps installs it); the kubelet will fall back to processes"
      exit 1
    fi
  done
}

# image_inputs_hash: hash of everything that goes into the image.
image_inputs_hash() {
  (cd "${ROOT}" && find local/image/Containerfile runner_image -type f -print0 | sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -d' ' -f1
}

image_exists() { podman image exists "$1" 2>/dev/null; }

image_build_base() {
  local mirror rootfs start
  image_exists "${BASE_IMAGE}" && return 0
  start="${SECONDS}"
  mirror="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  rootfs="${WORK}/rootfs"
  rm -rf "${rootfs}"
  mkdir -p "${rootfs}"
  image_log "debootstrap bookworm from ${mirror} (about 30 s)"
  debootstrap --variant=minbase bookworm "${rootfs}" "${mirror}" >"${WORK}/debootstrap.log" 2>&1 \
    || { image_log "debootstrap failed; see ${WORK}/debootstrap.log"; exit 1; }
  tar -C "${rootfs}" -c . | podman import - "${BASE_IMAGE}" >/dev/null
  rm -rf "${rootfs}"
  image_log "base image ${BASE_IMAGE} in $((SECONDS - start)) s"
}

main() {
  local want stamp start
  image_require
  mkdir -p "${WORK}"
  stamp="${WORK}/inputs.sha256"
  want="$(image_inputs_hash)"
  if image_exists "${IMAGE}" && [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    image_log "${IMAGE} is up to date"
    return 0
  fi
  image_build_base
  start="${SECONDS}"
  podman build --pull=never -f "${ROOT}/local/image/Containerfile" -t "${IMAGE}" "${ROOT}" >"${WORK}/build.log" 2>&1 \
    || { image_log "podman build failed; see ${WORK}/build.log"; tail -20 "${WORK}/build.log" >&2; exit 1; }
  podman run --rm --pull=never --entrypoint bash "${IMAGE}" -c 'id -u && jq --version && psql --version' \
    >"${WORK}/smoke.log" 2>&1 || { image_log "smoke test failed; see ${WORK}/smoke.log"; exit 1; }
  printf '%s\n' "${want}" >"${stamp}"
  image_log "${IMAGE} built in $((SECONDS - start)) s"
}

main "$@"
