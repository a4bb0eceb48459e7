#!/usr/bin/env bash
# Set up the Google identities of gcs-script-runner's pods (and the Airflow side of the state bucket).
#
#   composer2, gke: one Google service account (GSA) per Kubernetes service account (KSA) the pods may run
#     as (`script-runner` and each --identity, the settings' service_account_allowlist), bound by Workload
#     Identity (roles/iam.workloadIdentityUser, the KSA's iam.gke.io/gcp-service-account annotation).
#   composer3: no custom KSAs; pods run as the environment's service account, which impersonates one GSA per
#     --identity (roles/iam.serviceAccountTokenCreator on that GSA).
#   Every pod GSA gets read on the scripts (data/) and write on the state root's pod prefixes (state/ once/
#   events/) only, by IAM conditions on object names; --airflow-sa gets cache/ (done-markers: cache/done/)
#   ledger/ reports/ sizing/ (and, on gke, read on the scripts). Re-running it after an upgrade drops
#   nothing: remove an older release's grant on done/ yourself (gcloud storage buckets
#   remove-iam-policy-binding, the condition's title).
#   composer2, gke: the KSAs, their Workload Identity annotations and (composer2) the workers' namespace go
#   into a generated overlay, --overlay-dir (default k8s/generated/OVERLAY-PROJECT), on top of
#   k8s/overlays/OVERLAY, applied with `kubectl apply -k`: apply that directory from then on, so re-applying
#   the manifests never puts the placeholders back. It is written by --dry-run too (a local file only).
#
# Usage: k8s/setup-identity.sh --overlay composer2|gke|composer3 --project PROJECT --bucket BUCKET
#          [--identity NAME[=GSA_EMAIL]]... [--namespace script-runner] [--state-bucket BUCKET]
#          [--state-root script-runner] [--source-prefix data/] [--airflow-sa EMAIL]
#          [--environment-sa EMAIL] [--workers-namespace NAMESPACE] [--overlay-dir DIR] [--dry-run]
# --workers-namespace (composer2, required): the namespace of the Composer 2 Airflow workers, whose `default`
#   account launches the pods (kubectl get namespaces | grep composer-).
# --dry-run prints every gcloud/kubectl command (a runnable script) and runs none. Re-running is safe:
# bindings are added, existing accounts are kept, the overlay is applied again.
set -Eeuo pipefail

readonly SETUP_PROG=setup-identity
# shellcheck source=k8s/lib/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/setup.sh"

readonly POD_PREFIXES=(state once events)
readonly AIRFLOW_PREFIXES=(cache ledger reports sizing)
readonly BUCKET_TYPE='resource.type == "storage.googleapis.com/Bucket"'

OVERLAY="" PROJECT="" BUCKET="" STATE_BUCKET="" STATE_ROOT="script-runner" SOURCE_PREFIX="data/"
NAMESPACE="script-runner" AIRFLOW_SA="" ENVIRONMENT_SA="" DRY_RUN=false WORKERS_NAMESPACE="" OVERLAY_DIR=""
K8S_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly K8S_DIR
IDENTITIES=()

_parse() {
  while (($#)); do
    case "$1" in
      --overlay) OVERLAY="${2-}" ;;
      --project) PROJECT="${2-}" ;;
      --bucket) BUCKET="${2-}" ;;
      --state-bucket) STATE_BUCKET="${2-}" ;;
      --state-root) STATE_ROOT="${2-}" ;;
      --source-prefix) SOURCE_PREFIX="${2-}" ;;
      --namespace) NAMESPACE="${2-}" ;;
      --identity) IDENTITIES+=("${2-}") ;;
      --airflow-sa) AIRFLOW_SA="${2-}" ;;
      --environment-sa) ENVIRONMENT_SA="${2-}" ;;
      --workers-namespace) WORKERS_NAMESPACE="${2-}" ;;
      --overlay-dir) OVERLAY_DIR="${2-}" ;;
      --dry-run) DRY_RUN=true && shift && continue ;;
      -h | --help) setup_usage && exit 0 ;;
      *) setup_die "unknown argument '$1' (see --help)" ;;
    esac
    [[ $# -ge 2 && -n "$2" ]] || setup_die "$1 needs a value"
    shift 2
  done
  [[ "$OVERLAY" =~ ^(composer2|gke|composer3)$ ]] || setup_die "--overlay must be composer2, gke or composer3"
  [[ "$PROJECT" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || setup_die "--project '$PROJECT' is not a project id"
  BUCKET="${BUCKET#gs://}" && BUCKET="${BUCKET%/}"
  [[ "$BUCKET" =~ ^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$ ]] || setup_die "--bucket '$BUCKET' is not a bucket name"
  STATE_BUCKET="${STATE_BUCKET#gs://}" && STATE_BUCKET="${STATE_BUCKET%/}"
  STATE_BUCKET="${STATE_BUCKET:-$BUCKET}"
  STATE_ROOT="${STATE_ROOT#/}" && STATE_ROOT="${STATE_ROOT%/}"
  SOURCE_PREFIX="${SOURCE_PREFIX#/}" && SOURCE_PREFIX="${SOURCE_PREFIX%/}/"
  [[ -n "$STATE_ROOT" ]] || setup_die "--state-root must not be empty"
  local identity name
  for identity in "${IDENTITIES[@]}"; do
    name="${identity%%=*}"
    [[ "$name" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] || setup_die "identity '$name' is not a Kubernetes/GSA name"
    [[ "$identity" == *=* ]] || ((${#name} >= 6 && ${#name} <= 30)) ||
      setup_die "identity '$name': a service account id has 6-30 characters (or give NAME=GSA_EMAIL)"
  done
  if [[ "$OVERLAY" == composer3 ]]; then
    [[ -n "$ENVIRONMENT_SA" ]] || setup_die "composer3 needs --environment-sa (the environment's service account)"
  else
    IDENTITIES=("script-runner" "${IDENTITIES[@]}")
    OVERLAY_DIR="${OVERLAY_DIR:-${K8S_DIR}/generated/${OVERLAY}-${PROJECT}}"
  fi
  if [[ "$OVERLAY" == composer2 ]]; then
    [[ "$WORKERS_NAMESPACE" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || setup_die \
      "composer2 needs --workers-namespace, the Composer 2 workers' namespace (kubectl get namespaces | grep composer-)"
  fi
}

# _gsa_email NAME[=EMAIL]: the GSA of an identity (NAME@PROJECT.iam.gserviceaccount.com by default).
_gsa_email() {
  if [[ "$1" == *=* ]]; then
    printf '%s' "${1#*=}"
  else
    printf '%s@%s.iam.gserviceaccount.com' "$1" "$PROJECT"
  fi
}

# _prefix_condition BUCKET PREFIX...: a CEL expression matching the objects under any PREFIX of BUCKET.
_prefix_condition() {
  local bucket="$1" prefix out=""
  shift
  for prefix in "$@"; do
    out+="${out:+ || }resource.name.startsWith(\"projects/_/buckets/${bucket}/objects/${prefix}\")"
  done
  printf '%s' "$out"
}

# identity_ensure_gsa NAME[=EMAIL]: create the GSA NAME in PROJECT when it does not exist (an EMAIL given
# explicitly is yours to manage and is left alone).
identity_ensure_gsa() {
  local name="${1%%=*}" email
  email="$(_gsa_email "$1")"
  [[ "$1" != *=* ]] || return 0
  local create=(gcloud iam service-accounts create "$name" --project "$PROJECT"
    --display-name "gcs-script-runner pods: ${name}")
  if [[ "$DRY_RUN" == true ]]; then
    setup_run_unless "$(setup_words gcloud iam service-accounts describe "$email" --project "$PROJECT")" "${create[@]}"
    return 0
  fi
  gcloud iam service-accounts describe "$email" --project "$PROJECT" >/dev/null 2>&1 || setup_run "${create[@]}"
}

# identity_grant_bucket EMAIL ROLE TITLE EXPRESSION BUCKET: a conditional role on BUCKET for a GSA.
identity_grant_bucket() {
  setup_run gcloud storage buckets add-iam-policy-binding "gs://$5" --project "$PROJECT" --member "serviceAccount:$1" \
    --role "$2" --condition "title=$3,expression=$4"
}

# identity_grant_pod EMAIL: what a pod's identity may do in GCS: read the scripts, write its four prefixes.
identity_grant_pod() {
  local email="$1" prefixes=() p
  for p in "${POD_PREFIXES[@]}"; do
    prefixes+=("${STATE_ROOT}/${p}/")
  done
  identity_grant_bucket "$email" roles/storage.objectViewer script-runner-read-scripts \
    "${BUCKET_TYPE} || $(_prefix_condition "$BUCKET" "$SOURCE_PREFIX")" "$BUCKET"
  identity_grant_bucket "$email" roles/storage.objectUser script-runner-pod-state \
    "$(_prefix_condition "$STATE_BUCKET" "${prefixes[@]}")" "$STATE_BUCKET"
}

# identity_grant_airflow EMAIL: the Airflow identity reads the whole state root and writes its own prefixes;
# on gke it also reads the scripts.
identity_grant_airflow() {
  local email="$1" prefixes=() p
  for p in "${AIRFLOW_PREFIXES[@]}"; do
    prefixes+=("${STATE_ROOT}/${p}/")
  done
  identity_grant_bucket "$email" roles/storage.objectViewer script-runner-airflow-read \
    "${BUCKET_TYPE} || $(_prefix_condition "$STATE_BUCKET" "${STATE_ROOT}/")" "$STATE_BUCKET"
  identity_grant_bucket "$email" roles/storage.objectUser script-runner-airflow-state \
    "$(_prefix_condition "$STATE_BUCKET" "${prefixes[@]}")" "$STATE_BUCKET"
  # Composer's environment account reads its own bucket already; Airflow on GKE needs the scripts granted.
  if [[ "$OVERLAY" == gke ]]; then
    identity_grant_bucket "$email" roles/storage.objectViewer script-runner-airflow-read-scripts \
      "${BUCKET_TYPE} || $(_prefix_condition "$BUCKET" "$SOURCE_PREFIX")" "$BUCKET"
  fi
}

# identity_bind_ksa NAME[=EMAIL]: Workload Identity between KSA NAME in NAMESPACE and its GSA.
identity_bind_ksa() {
  local name="${1%%=*}" email
  email="$(_gsa_email "$1")"
  setup_run gcloud iam service-accounts add-iam-policy-binding "$email" --project "$PROJECT" \
    --role roles/iam.workloadIdentityUser \
    --member "serviceAccount:${PROJECT}.svc.id.goog[${NAMESPACE}/${name}]"
}

# _overlay_base DIR: the path of k8s/overlays/OVERLAY relative to DIR (absolute without GNU realpath).
_overlay_base() {
  realpath -m --relative-to="$1" "${K8S_DIR}/overlays/${OVERLAY}" 2>/dev/null ||
    printf '%s' "${K8S_DIR}/overlays/${OVERLAY}"
}

# identity_write_overlay: write OVERLAY_DIR, k8s/overlays/OVERLAY with this project's values filled in: each
# KSA with its Workload Identity annotation, (composer2) the workers' namespace in the launcher RoleBinding,
# and NAMESPACE. Rewritten whole on every run (it holds nothing else).
identity_write_overlay() {
  local identity name files=()
  mkdir -p "$OVERLAY_DIR"
  for identity in "${IDENTITIES[@]}"; do
    name="${identity%%=*}"
    files+=("serviceaccount-${name}.yaml")
    printf '%s\n' "apiVersion: v1" "kind: ServiceAccount" "metadata:" "  name: ${name}" "  annotations:" \
      "    iam.gke.io/gcp-service-account: $(_gsa_email "$identity")" "automountServiceAccountToken: false" \
      >"${OVERLAY_DIR}/serviceaccount-${name}.yaml"
  done
  {
    printf '%s\n' "# Generated by k8s/setup-identity.sh for project ${PROJECT}: apply this directory" \
      "# (kubectl apply -k), not k8s/overlays/${OVERLAY}, whose placeholders would replace these values." \
      "apiVersion: kustomize.config.k8s.io/v1beta1" "kind: Kustomization" "resources:" \
      "  - $(_overlay_base "$OVERLAY_DIR")"
    # The overlay's own account (the first) is patched; each further identity is a new ServiceAccount.
    for name in "${files[@]:1}"; do
      printf '  - %s\n' "$name"
    done
    printf '%s\n' "patches:" "  - path: ${files[0]}"
    if [[ "$OVERLAY" == composer2 ]]; then
      printf '%s\n' "  - target: {kind: RoleBinding, name: script-runner-launcher}" "    patch: |-" \
        "      - {op: replace, path: /subjects/0/namespace, value: ${WORKERS_NAMESPACE}}"
    fi
    printf '%s\n' "transformers:" "  - |-" "    apiVersion: builtin" "    kind: NamespaceTransformer" \
      "    metadata: {name: script-runner-namespace, namespace: ${NAMESPACE}}" \
      "    setRoleBindingSubjects: none"
  } >"${OVERLAY_DIR}/kustomization.yaml"
}

# identity_apply_overlay: write the generated overlay and apply it (creates or updates: safe to repeat).
identity_apply_overlay() {
  identity_write_overlay
  setup_note "the manifests with this project's identities: ${OVERLAY_DIR} (apply it, not k8s/overlays/${OVERLAY})"
  setup_run kubectl apply -k "$OVERLAY_DIR"
}

# identity_allow_impersonation NAME[=EMAIL]: the environment's service account may mint tokens for the GSA.
identity_allow_impersonation() {
  setup_run gcloud iam service-accounts add-iam-policy-binding "$(_gsa_email "$1")" --project "$PROJECT" \
    --role roles/iam.serviceAccountTokenCreator --member "serviceAccount:${ENVIRONMENT_SA}"
}

_check_uniform_access() {
  local bucket="$1" uniform
  if [[ "$DRY_RUN" == true ]]; then
    setup_note "IAM conditions need uniform bucket-level access on gs://${bucket}; check with:"
    setup_note "gcloud storage buckets describe gs://${bucket} --project ${PROJECT} --format='value(uniform_bucket_level_access)'"
    return 0
  fi
  uniform="$(gcloud storage buckets describe "gs://${bucket}" --project "$PROJECT" \
    --format='value(uniform_bucket_level_access)')"
  [[ "${uniform,,}" == true ]] ||
    setup_die "gs://${bucket} has no uniform bucket-level access, which IAM conditions need: turn it on first"
}

main() {
  _parse "$@"
  local identity
  setup_note "gcs-script-runner identities: overlay ${OVERLAY}, project ${PROJECT}, scripts gs://${BUCKET}/${SOURCE_PREFIX}, state gs://${STATE_BUCKET}/${STATE_ROOT}/"
  _check_uniform_access "$BUCKET"
  [[ "$STATE_BUCKET" == "$BUCKET" ]] || _check_uniform_access "$STATE_BUCKET"
  if [[ "$OVERLAY" == composer3 && ${#IDENTITIES[@]} -eq 0 ]]; then
    setup_note "composer3 without --identity: every pod runs as ${ENVIRONMENT_SA}, which the environment already"
    setup_note "lets use its bucket. Name the identities of service_account_allowlist with --identity to add more."
  fi
  [[ "$OVERLAY" == composer3 ]] || identity_apply_overlay
  for identity in "${IDENTITIES[@]}"; do
    setup_note "identity ${identity%%=*}: $(_gsa_email "$identity")"
    identity_ensure_gsa "$identity"
    if [[ "$OVERLAY" == composer3 ]]; then
      identity_allow_impersonation "$identity"
    else
      identity_bind_ksa "$identity"
    fi
    identity_grant_pod "$(_gsa_email "$identity")"
  done
  if [[ -n "$AIRFLOW_SA" ]]; then
    setup_note "Airflow's identity ${AIRFLOW_SA}: the header cache, the attempt ledger, the reports and the sizing history"
    identity_grant_airflow "$AIRFLOW_SA"
  fi
}

main "$@"
