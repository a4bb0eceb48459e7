"""The storage client deploy reads and writes the bucket with: the user's gcloud login, no ADC needed.

In order: the GCS emulator (``STORAGE_EMULATOR_HOST``, the local stack); the access token of gcloud's
active account (``gcloud auth print-access-token``, the login the rest of deploy already uses); Application
Default Credentials. When none gives credentials, the error names both logins instead of a traceback.
gcloud's storage endpoint override (``CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE``) is honoured, as gcloud
itself would.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from script_runner.deploy.targets import print_access_token
from script_runner.exceptions import DeployError

if TYPE_CHECKING:
    from collections.abc import Callable

    from google.cloud import storage

NO_CREDENTIALS = (
    "no Google credentials to read the bucket with: run `gcloud auth login` (deploy then uses gcloud's "
    "token) or `gcloud auth application-default login`"
)


def _endpoint() -> dict[str, Any]:
    override = os.environ.get("CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE", "").rstrip("/")
    if not override:
        return {}
    return {"client_options": {"api_endpoint": override.removesuffix("/storage/v1")}}


def storage_client(
    *, gcloud: str = "gcloud", project: str | None = None, token: Callable[[], str] | None = None
) -> storage.Client:
    """A client for the environment's bucket.

    :param gcloud: the gcloud executable (its token is used when there is no emulator).
    :param project: the billing/quota project; None: ``CLOUDSDK_CORE_PROJECT`` or none.
    :param token: where the gcloud token comes from (e.g. a ``Gcloud`` that already asked for it);
        None: ``gcloud auth print-access-token``.
    :raises DeployError: no credentials at all, naming ``gcloud auth login``.
    """
    from google.cloud import storage

    project = project or os.environ.get("CLOUDSDK_CORE_PROJECT") or None
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return storage.Client(project=project or "local")
    try:
        access = token() if token is not None else print_access_token(gcloud)
    except DeployError as gcloud_error:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            credentials, found = google.auth.default()
        except DefaultCredentialsError as exc:
            raise DeployError(f"{NO_CREDENTIALS} ({gcloud_error})") from exc
        return storage.Client(project=project or found, credentials=credentials, **_endpoint())
    from google.oauth2.credentials import Credentials

    credentials = Credentials(access)  # type: ignore[no-untyped-call]
    return storage.Client(project=project or "-", credentials=credentials, **_endpoint())
