# The runner image: what every script pod runs. bash, the Google Cloud CLI (gcloud, gsutil, bq), psql, jq,
# curl, python3, and our entrypoint and library under /opt/runner.
# Build (README "Deploying to Composer"): gcloud builds submit --tag REGION-docker.pkg.dev/P/R/script-runner:TAG .
#
# Reproducible without pinning Debian patch versions (Debian serves only the newest revision in a suite, so
# exact pins break at every security update):
# - the base image is pinned by digest. debian:bookworm-slim@sha256:88200866… is the digest Renovate proposed
#   for debian:bookworm-slim on 2025-11-09 (github.com/MathiasPius/kronform pull 323) and that
#   github.com/BrickO-Brick/hive still pins in its image build script in 2026; bump it together with the
#   release globs in runner_image/apt-packages.txt (`make image-check` resolves them against the archive);
# - the Debian packages come from runner_image/apt-packages.txt with their upstream majors pinned by glob;
# - the Google Cloud CLI comes from Google's apt repository at an exact version (that repository keeps every
#   version, so the pin keeps installing).
# The local image (local/image/build.sh) is built from this same file with BASE_IMAGE set to a debootstrapped
# bookworm and INSTALL_GOOGLE_CLOUD_CLI=false (Google's repository is not reachable there; the local kubelet
# bind-mounts the host's Cloud SDK at /usr/lib/google-cloud-sdk instead, which is on PATH below).
ARG BASE_IMAGE=debian:bookworm-slim@sha256:88200866dfff7ea7f5cbcb6ec7c8a701889efe6fe859fe64d6990e4b07ea4171
FROM ${BASE_IMAGE}

# gcloud, gsutil and bq ship in google-cloud-cli; VERSION-0 is the Debian revision Google's repository uses.
ARG GOOGLE_CLOUD_CLI_VERSION=528.0.0
ARG INSTALL_GOOGLE_CLOUD_CLI=true
# Only part of the next layer's cache key: local/image/build.sh passes a digest of the versions the archive
# serves today, so a security update rebuilds the package layer instead of reusing a cached one.
ARG ARCHIVE_STATE=unset

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY runner_image/apt-packages.txt /tmp/apt-packages.txt

# One layer: the packages of the list, then (production) Google's repository and the Cloud CLI, then cleanup,
# then a smoke test of every tool. The build-only packages (gnupg) are purged before the layer is written.
# DL3008 (pin versions in apt-get install) is ignored because hadolint cannot see into the list: the versions
# are pinned there, by upstream-major glob, and resolved against the archive by `make image-check`.
# hadolint ignore=DL3008
RUN mapfile -t runtime_pkgs < <(awk '!/^[[:space:]]*(#|$)/ && $1 !~ /^build:/ {print $1}' /tmp/apt-packages.txt) \
 && mapfile -t build_pkgs < <(awk '$1 ~ /^build:/ {sub(/^build:/, "", $1); print $1}' /tmp/apt-packages.txt) \
 && mapfile -t build_names < <(printf '%s\n' "${build_pkgs[@]}" | awk -F= '{print $1}') \
 && export DEBIAN_FRONTEND=noninteractive \
 && apt-get update \
 && apt-get install -y --no-install-recommends "${runtime_pkgs[@]}" \
 && if [[ "${INSTALL_GOOGLE_CLOUD_CLI}" == true ]]; then \
      apt-get install -y --no-install-recommends "${build_pkgs[@]}" \
      && curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg \
           | gpg --dearmor -o /usr/share/keyrings/cloud.google.gpg \
      && echo "deb [signed-by=/usr/share/keyrings/cloud.google.gpg] https://packages.cloud.google.com/apt cloud-sdk main" \
           > /etc/apt/sources.list.d/google-cloud-sdk.list \
      && apt-get update \
      && apt-get install -y --no-install-recommends "google-cloud-cli=${GOOGLE_CLOUD_CLI_VERSION}-0" \
      && apt-get purge -y --auto-remove "${build_names[@]}" \
      && gcloud config set core/disable_usage_reporting true --installation \
      && gcloud config set component_manager/disable_update_check true --installation \
      && CLOUDSDK_CONFIG=/tmp/gcloud-smoke gcloud version \
      && CLOUDSDK_CONFIG=/tmp/gcloud-smoke gsutil version \
      && CLOUDSDK_CONFIG=/tmp/gcloud-smoke bq version \
      && rm -rf /tmp/gcloud-smoke; \
    fi \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /tmp/apt-packages.txt \
 && bash --version | head -1 && curl --version | head -1 && jq --version && openssl version \
 && psql --version && python3 --version && pgrep --version

# A numeric non-root user (Kubernetes runAsNonRoot checks the number); scripts run in /work, an emptyDir.
RUN useradd --uid 10001 --user-group --home-dir /home/runner --create-home --shell /bin/bash runner \
 && mkdir -p /work && chown 10001:10001 /work

ENV RUNNER_LIB=/opt/runner/lib/runner.sh \
    RUNNER_WORKDIR=/work \
    CLOUDSDK_CONFIG=/tmp/gcloud \
    HOME=/home/runner \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/google-cloud-sdk/bin

# Changes most often: last. Modes are set by RUN, not COPY --chmod, which needs BuildKit (Cloud Build's
# default docker builder and podman 4.3 do not all have it).
COPY runner_image/lib/ /opt/runner/lib/
COPY runner_image/entrypoint /opt/runner/entrypoint
RUN chmod 0755 /opt/runner/lib /opt/runner/entrypoint && chmod 0644 /opt/runner/lib/*

USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/opt/runner/entrypoint"]
