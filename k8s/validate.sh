#!/usr/bin/env bash
# Build every kustomize overlay (and the base) and validate the output offline against the Kubernetes
# 1.30 schemas in strict mode (unknown fields fail). Needs kubectl (kustomize built in) and
# kubernetes-validate on PATH. Exit 0 when all pass, 1 naming the first overlay that fails.
set -Eeuo pipefail

K8S_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly K8S_DIR
readonly KUBE_VERSION="${KUBE_VERSION:-1.30.0}"

validate_require() {
  local tool
  for tool in kubectl kubernetes-validate; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
      echo "validate: ${tool} not found; run 'make venv' (kubernetes-validate) and install kubectl" >&2
      exit 1
    fi
  done
}

# validate_dir DIR: build DIR with kustomize and validate every object; prints one summary line.
validate_dir() {
  local dir="$1" rendered count
  if ! rendered="$(kubectl kustomize "${dir}")"; then
    echo "validate: kustomize build failed for ${dir#"${K8S_DIR}/"}" >&2
    return 1
  fi
  if ! kubernetes-validate --strict --quiet -k "${KUBE_VERSION}" - <<<"${rendered}"; then
    echo "validate: ${dir#"${K8S_DIR}/"} does not validate against Kubernetes ${KUBE_VERSION}" >&2
    return 1
  fi
  count="$(grep -c '^kind:' <<<"${rendered}")"
  echo "validate: ${dir#"${K8S_DIR}/"} ok (${count} objects, Kubernetes ${KUBE_VERSION}, strict)"
}

main() {
  validate_require
  local dir
  validate_dir "${K8S_DIR}/base"
  for dir in "${K8S_DIR}"/overlays/*/; do
    validate_dir "${dir%/}"
  done
}

main "$@"
