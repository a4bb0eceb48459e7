#!/usr/bin/env bash
# Build the local runner image (localhost/script-runner:local) for the podman kubelet, without a registry:
# debootstrap a Debian base of the Dockerfile's release, import it into podman, then build the root Dockerfile
# itself on top (the production file: same package list, user, layout), with Google's apt repository step
# switched off (not reachable here; the kubelet bind-mounts the host's Cloud SDK instead).
# Skips when the inputs (Dockerfile, runner_image/, and the versions today's archive serves for the package
# list) have not changed since the last build.
# Env: SR_IMAGE (the tag to build), SR_BASE_IMAGE (the debootstrapped base's tag), SR_DEBIAN_MIRROR.
# Exit 0 when the image is ready; 1 when the build or its smoke test failed; 2 when it cannot be built here
# (podman, runc or debootstrap missing). Either way the reason is printed.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly IMAGE="${SR_IMAGE:-localhost/script-runner:local}"
readonly WORK="${ROOT}/local/.run/image${SR_IMAGE:+-$(printf '%s' "${SR_IMAGE}" | tr -c 'a-zA-Z0-9\n' '_')}"
export CONTAINERS_CONF="${ROOT}/local/image/containers.conf"
# shellcheck source=local/image/debian.sh
source "${ROOT}/local/image/debian.sh"
# The Debian release the Dockerfile's BASE_IMAGE names (bookworm), and the local base made like that
# release's -slim image: sources with the -updates and -security suites, no docs, man pages or translations
# (dpkg path excludes), no apt lists or caches. Tagged by release, so a release bump makes a new base.
RELEASE="$(debian_release "${ROOT}/Dockerfile")" || exit 1
readonly RELEASE
readonly BASE_IMAGE="${SR_BASE_IMAGE:-localhost/script-runner-base:${RELEASE}-slim}"

image_log() { printf '[image] %s\n' "$*" >&2; }

image_require() {
  local tool
  for tool in podman runc debootstrap; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
      image_log "${tool} is not installed (make sysdeps installs it); the kubelet will fall back to processes"
      exit 2
    fi
  done
}

# image_archive_state: a digest of the package versions today's archive serves for the list (from
#   check_packages.sh), so that a Debian security update rebuilds the image as it would in production;
#   `unknown` when the archive cannot be read (then only the files decide).
image_archive_state() {
  local served
  if served="$(bash "${ROOT}/local/image/check_packages.sh" 2>/dev/null)"; then
    sha256sum <<<"${served}" | cut -c1-16
  else
    printf 'unknown\n'
  fi
}

# image_inputs_hash STATE: hash of everything that goes into the image: the files and the archive state.
image_inputs_hash() {
  {
    (cd "${ROOT}" && find Dockerfile .dockerignore runner_image -type f -print0 | sort -z | xargs -0 sha256sum)
    printf 'archive %s\n' "$1"
  } | sha256sum | cut -d' ' -f1
}

image_exists() { podman image exists "$1" 2>/dev/null; }

# _image_slim ROOTFS: what Debian's -slim images do: keep dpkg from installing docs, man pages and
#   translations (copyright files stay), remove those already there, and drop apt's lists and caches.
_image_slim() {
  local rootfs="$1"
  cat >"${rootfs}/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
  find "${rootfs}/usr/share/doc" -xdev -type f ! -name copyright -delete
  rm -rf "${rootfs}"/usr/share/{man,groff,info,lintian,linda,locale}/* "${rootfs}"/var/lib/apt/lists/* \
    "${rootfs}"/var/cache/apt/*
}

# _image_as_root CMD...: run CMD as root (debootstrap needs it): directly as root, else through sudo.
_image_as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  else
    sudo -n "$@"
  fi
}

image_build_base() {
  local release="${RELEASE}" rootfs start mirror
  image_exists "${BASE_IMAGE}" && return 0
  mirror="$(debian_mirror)" || exit 2
  start="${SECONDS}"
  rootfs="${WORK}/rootfs"
  _image_as_root rm -rf "${rootfs}"
  mkdir -p "${rootfs}"
  image_log "debootstrap ${release} from ${mirror} (about 30 s)"
  _image_as_root debootstrap --variant=minbase "${release}" "${rootfs}" "${mirror}" \
    >"${WORK}/debootstrap.log" 2>&1 || { image_log "debootstrap failed; see ${WORK}/debootstrap.log"; exit 1; }
  debian_sources_list "${release}" | _image_as_root tee "${rootfs}/etc/apt/sources.list" >/dev/null
  _image_as_root bash -c "$(declare -f _image_slim); _image_slim \"\$1\"" _ "${rootfs}"
  _image_as_root tar -C "${rootfs}" -c . | podman import - "${BASE_IMAGE}" >/dev/null
  _image_as_root rm -rf "${rootfs}"
  image_log "base image ${BASE_IMAGE} in $((SECONDS - start)) s"
}

# image_smoke: run the built image as it runs in a pod (its user, its PATH) and record the tool versions.
image_smoke() {
  podman run --rm --pull=never --network none --entrypoint bash "${IMAGE}" -c '
      set -e
      printf "user %s\n" "$(id -u)"
      printf "bash %s\n" "${BASH_VERSION}"
      printf "curl %s\n" "$(curl --version | head -1 | cut -d" " -f2)"
      printf "jq %s\n" "$(jq --version)"
      printf "openssl %s\n" "$(openssl version | cut -d" " -f2)"
      printf "psql %s\n" "$(psql --version | cut -d" " -f3)"
      printf "python3 %s\n" "$(python3 --version | cut -d" " -f2)"
      printf "procps %s\n" "$(pgrep --version | awk "{print \$NF}")"' >"${WORK}/versions.txt" 2>"${WORK}/smoke.log" \
    || { image_log "smoke test failed; see ${WORK}/smoke.log"; exit 1; }
  podman image inspect --format '{{.Size}}' "${IMAGE}" | awk '{printf "size %d MB\n", $1 / 1000000}' \
    >>"${WORK}/versions.txt"
}

main() {
  local want stamp start state
  image_require
  mkdir -p "${WORK}"
  stamp="${WORK}/inputs.sha256"
  state="$(image_archive_state)"
  want="$(image_inputs_hash "${state}")"
  if image_exists "${IMAGE}" && [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    image_log "${IMAGE} is up to date"
    return 0
  fi
  image_build_base
  start="${SECONDS}"
  # --format docker: the OCI format has no SHELL instruction, and the Dockerfile's RUN lines are bash.
  podman build --pull=never --format docker -f "${ROOT}/Dockerfile" \
    --build-arg "BASE_IMAGE=${BASE_IMAGE}" --build-arg INSTALL_GOOGLE_CLOUD_CLI=false \
    --build-arg "ARCHIVE_STATE=${state}" \
    -t "${IMAGE}" "${ROOT}" >"${WORK}/build.log" 2>&1 \
    || { image_log "podman build failed; see ${WORK}/build.log"; tail -20 "${WORK}/build.log" >&2; exit 1; }
  image_smoke
  printf '%s\n' "${want}" >"${stamp}"
  image_log "${IMAGE} built from the Dockerfile in $((SECONDS - start)) s; versions in ${WORK}/versions.txt"
}

main "$@"
