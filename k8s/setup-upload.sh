#!/usr/bin/env bash
# Set up runs on upload (README "Run on upload"): the bucket's uploads under the source prefix are published
# to a Pub/Sub topic (a GCS bucket notification, OBJECT_FINALIZE only), and the runner DAG's watcher pulls a
# subscription of it with the Airflow identity.
#
# Usage: k8s/setup-upload.sh --project PROJECT --bucket BUCKET [--topic script-runner-uploads]
#          [--subscription script-runner-uploads] [--source-prefix data/] [--airflow-sa EMAIL]
#          [--environment NAME --location LOCATION] [--dry-run]
# --airflow-sa gets roles/pubsub.subscriber on the subscription (pull and acknowledge). With --environment,
# the Composer environment gets SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION (an environment update takes minutes).
# --dry-run prints every gcloud command (a runnable script) and runs none; its creates are guarded by a
# describe (or the notification list), so the printed script may run again too. Re-running is safe: an
# existing topic, subscription or notification (same topic and prefix) is kept, not created twice.
# Needs jq (it reads the bucket's notifications to find an existing one).
set -Eeuo pipefail

readonly SETUP_PROG=setup-upload
# shellcheck source=k8s/lib/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/setup.sh"

# Longer than the watcher's settle window and its longest burst (max_wait, 60 s) with margin.
readonly ACK_DEADLINE=120

PROJECT="" BUCKET="" TOPIC="script-runner-uploads" SUBSCRIPTION="script-runner-uploads"
SOURCE_PREFIX="data/" AIRFLOW_SA="" ENVIRONMENT="" LOCATION="" DRY_RUN=false

# upload_exists CMD...: whether CMD (a describe or list) succeeds and prints something; false when
# dry-running (the dry run shows every create).
# Returns: 0 when the resource exists.
upload_exists() {
  local out
  [[ "$DRY_RUN" == true ]] && return 1
  out="$("$@" 2>/dev/null)" || return 1
  [[ -n "$out" ]]
}

# What finds our notification in `gcloud storage buckets notifications list --format=json`, any shape of
# it (plain configurations or wrapped with their bucket); jq arguments topic and prefix.
# shellcheck disable=SC2016 # jq's variables
readonly NOTIFICATION_FILTER='[.. | objects | select(has("topic"))] | any(((.topic | tostring) | endswith($topic)) and ((.object_name_prefix // .objectNamePrefix // "") == $prefix))'

# _notification_exists: whether the bucket already notifies the topic of the source prefix (never when
# dry-running).
# Returns: 0 when it does; exits when the bucket's notifications cannot be listed (creating one then could
# add a duplicate: every notification publishes each upload once more).
_notification_exists() {
  local listed
  [[ "$DRY_RUN" == true ]] && return 1
  listed="$(gcloud storage buckets notifications list "gs://${BUCKET}" --project "$PROJECT" --format=json)" ||
    setup_die "cannot list the notifications of gs://${BUCKET} (see gcloud's error above): fix that, then run again"
  jq -e --arg topic "/topics/${TOPIC}" --arg prefix "$SOURCE_PREFIX" "$NOTIFICATION_FILTER" \
    <<<"${listed:-[]}" >/dev/null
}

# _require_jq: stop before anything runs when jq is missing (a real run; the dry run's script needs it too,
# when it is run).
_require_jq() {
  command -v jq >/dev/null 2>&1 ||
    setup_die "jq is needed to find an existing bucket notification (without it a re-run would add a duplicate): install jq (apt-get install jq, brew install jq), then run again"
}

_parse() {
  while (($#)); do
    case "$1" in
      --project) PROJECT="${2-}" ;;
      --bucket) BUCKET="${2-}" ;;
      --topic) TOPIC="${2-}" ;;
      --subscription) SUBSCRIPTION="${2-}" ;;
      --source-prefix) SOURCE_PREFIX="${2-}" ;;
      --airflow-sa) AIRFLOW_SA="${2-}" ;;
      --environment) ENVIRONMENT="${2-}" ;;
      --location) LOCATION="${2-}" ;;
      --dry-run)
        DRY_RUN=true
        shift
        continue
        ;;
      -h | --help)
        setup_usage
        exit 0
        ;;
      *) setup_die "unknown argument: $1 (see --help)" ;;
    esac
    [[ $# -ge 2 && -n "$2" ]] || setup_die "$1 needs a value"
    shift 2
  done
  [[ -n "$PROJECT" ]] || setup_die "--project is required"
  BUCKET="${BUCKET#gs://}"
  BUCKET="${BUCKET%/}"
  [[ -n "$BUCKET" ]] || setup_die "--bucket is required"
  [[ "$SOURCE_PREFIX" == */ ]] || setup_die "--source-prefix must end with / (got ${SOURCE_PREFIX})"
  if [[ -n "$ENVIRONMENT" && -z "$LOCATION" ]]; then
    setup_die "--environment needs --location"
  fi
}

_topic_and_notification() {
  local topic_path="projects/${PROJECT}/topics/${TOPIC}"
  if [[ "$DRY_RUN" == true ]]; then
    setup_run_unless "$(setup_words gcloud pubsub topics describe "$TOPIC" --project "$PROJECT")" \
      gcloud pubsub topics create "$TOPIC" --project "$PROJECT"
  elif upload_exists gcloud pubsub topics describe "$TOPIC" --project "$PROJECT" --format=value'(name)'; then
    setup_note "topic ${topic_path} exists: kept"
  else
    setup_run gcloud pubsub topics create "$TOPIC" --project "$PROJECT"
  fi
  # Cloud Storage publishes as the project's service agent: it needs publish on the topic.
  setup_note "Cloud Storage's service agent may publish to the topic"
  if [[ "$DRY_RUN" == true ]]; then
    # shellcheck disable=SC2016 # the dry run prints the command substitution for its reader to run
    printf 'gcloud pubsub topics add-iam-policy-binding %s --project %s --member="serviceAccount:$(gcloud storage service-agent --project %s)" --role=roles/pubsub.publisher\n' \
      "$(setup_quote "$TOPIC")" "$(setup_quote "$PROJECT")" "$(setup_quote "$PROJECT")"
  else
    local agent
    agent="$(gcloud storage service-agent --project "$PROJECT")"
    setup_run gcloud pubsub topics add-iam-policy-binding "$TOPIC" --project "$PROJECT" \
      --member="serviceAccount:${agent}" --role=roles/pubsub.publisher
  fi
  local create=(gcloud storage buckets notifications create "gs://${BUCKET}" --project "$PROJECT" --topic="$topic_path"
    --event-types=OBJECT_FINALIZE --object-prefix="$SOURCE_PREFIX" --payload-format=json --skip-topic-setup)
  if [[ "$DRY_RUN" == true ]]; then
    setup_run_unless "$(setup_words gcloud storage buckets notifications list "gs://${BUCKET}" --project "$PROJECT" --format=json) | $(
      setup_words jq -e --arg topic "/topics/${TOPIC}" --arg prefix "$SOURCE_PREFIX" "$NOTIFICATION_FILTER")" \
      "${create[@]}"
  elif _notification_exists; then
    setup_note "a notification of gs://${BUCKET}/${SOURCE_PREFIX} to ${TOPIC} exists: kept"
  else
    setup_run "${create[@]}"
  fi
}

_subscription() {
  local create=(gcloud pubsub subscriptions create "$SUBSCRIPTION" --project "$PROJECT" --topic="$TOPIC"
    --ack-deadline="$ACK_DEADLINE" --message-retention-duration=1d --expiration-period=never)
  if [[ "$DRY_RUN" == true ]]; then
    setup_run_unless "$(setup_words gcloud pubsub subscriptions describe "$SUBSCRIPTION" --project "$PROJECT")" \
      "${create[@]}"
  elif upload_exists gcloud pubsub subscriptions describe "$SUBSCRIPTION" --project "$PROJECT" \
    --format=value'(name)'; then
    setup_note "subscription projects/${PROJECT}/subscriptions/${SUBSCRIPTION} exists: kept"
  else
    setup_run "${create[@]}"
  fi
  if [[ -n "$AIRFLOW_SA" ]]; then
    setup_run gcloud pubsub subscriptions add-iam-policy-binding "$SUBSCRIPTION" --project "$PROJECT" \
      --member="serviceAccount:${AIRFLOW_SA}" --role=roles/pubsub.subscriber
  else
    setup_note "grant the Airflow identity roles/pubsub.subscriber on the subscription (--airflow-sa EMAIL)"
  fi
}

_environment() {
  local value="projects/${PROJECT}/subscriptions/${SUBSCRIPTION}"
  if [[ -n "$ENVIRONMENT" ]]; then
    setup_run gcloud composer environments update "$ENVIRONMENT" --location "$LOCATION" \
      --project "$PROJECT" --update-env-variables="SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION=${value}"
  else
    setup_note "then set SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION=${value} in the Composer environment:"
    setup_note "  gcloud composer environments update ENV --location LOC --update-env-variables=SCRIPT_RUNNER_UPLOAD_SUBSCRIPTION=${value}"
  fi
  setup_note "on Airflow 2.11 also deploy dags/gcs_script_runner_upload.py (the watcher DAG)"
}

main() {
  _parse "$@"
  [[ "$DRY_RUN" == true ]] || _require_jq
  [[ "$DRY_RUN" == true ]] && setup_note "setup-upload dry run: gs://${BUCKET}/${SOURCE_PREFIX} -> ${TOPIC} -> ${SUBSCRIPTION}"
  _topic_and_notification
  _subscription
  _environment
}

main "$@"
