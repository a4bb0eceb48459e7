# The runner image: what every script pod runs. bash + the Google Cloud CLI (gcloud, gsutil, bq), psql, jq,
# curl, and our entrypoint and library under /opt/runner. Build: docker build -t REGION-docker.pkg.dev/P/R/script-runner:TAG .
# Versions are build arguments so an upgrade is one reviewed line.
ARG DEBIAN_VERSION=bookworm-20251117-slim
FROM debian:${DEBIAN_VERSION}

# Debian 12 package versions as of the base image date; bump together with DEBIAN_VERSION.
ARG CLOUD_SDK_VERSION=528.0.0
ARG POSTGRES_CLIENT_VERSION=15.18-0+deb12u1
ARG JQ_VERSION=1.6-2.1+deb12u1
ARG CURL_VERSION=7.88.1-10+deb12u14
ARG CA_CERTIFICATES_VERSION=20230311+deb12u1
ARG GNUPG_VERSION=2.2.40-1.1+deb12u2
ARG PYTHON3_VERSION=3.11.2-1+b1
ARG OPENSSL_VERSION=3.0.19-1~deb12u2

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Google's apt repository for the Cloud CLI (gcloud, gsutil and bq ship in google-cloud-cli).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates="${CA_CERTIFICATES_VERSION}" gnupg="${GNUPG_VERSION}" curl="${CURL_VERSION}" \
 && curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg \
      | gpg --dearmor -o /usr/share/keyrings/cloud.google.gpg \
 && echo "deb [signed-by=/usr/share/keyrings/cloud.google.gpg] https://packages.cloud.google.com/apt cloud-sdk main" \
      > /etc/apt/sources.list.d/google-cloud-sdk.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      google-cloud-cli="${CLOUD_SDK_VERSION}-0" \
      postgresql-client-15="${POSTGRES_CLIENT_VERSION}" \
      jq="${JQ_VERSION}" \
      python3="${PYTHON3_VERSION}" \
      openssl="${OPENSSL_VERSION}" \
 && apt-get purge -y gnupg \
 && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && gcloud config set core/disable_usage_reporting true --installation \
 && gcloud config set component_manager/disable_update_check true --installation \
 && gsutil version -l && bq version && psql --version && jq --version

# A numeric non-root user (Kubernetes runAsNonRoot checks the number); scripts run in /work, an emptyDir.
RUN useradd --uid 10001 --user-group --home-dir /home/runner --create-home --shell /bin/bash runner \
 && mkdir -p /work && chown 10001:10001 /work

ENV RUNNER_LIB=/opt/runner/lib/runner.sh \
    RUNNER_WORKDIR=/work \
    CLOUDSDK_CONFIG=/tmp/gcloud \
    HOME=/home/runner

# Changes most often: last.
COPY --chmod=0644 runner_image/lib/ /opt/runner/lib/
COPY --chmod=0755 runner_image/entrypoint /opt/runner/entrypoint

USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/opt/runner/entrypoint"]
