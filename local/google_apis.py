"""The IAM Credentials and Secret Manager calls a pod makes, emulated beside the IAM front for GCS.

Two REST calls, each authorized by the caller's bearer token and the local policy
(``local/iam/policy.json``, re-read when it changes):

``POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`` (iamcredentials.googleapis.com)
    The caller may act as EMAIL when EMAIL's identity entry has a binding of
    ``roles/iam.serviceAccountTokenCreator`` for ``serviceAccount:<caller email>``. The answer is a fresh
    token (``local-minted-<account>-<random>``) with ``expireTime``; the IAM front then treats it as that
    service account until it expires (``lifetime`` in the body, default and at most 3600 s).

``GET /v1/projects/P/secrets/S/versions/V:access`` (secretmanager.googleapis.com)
    The caller needs ``roles/secretmanager.secretAccessor`` on the secret (a binding in its ``iam_policy``).
    ``latest`` is the highest version. The answer carries the value base64-encoded, with its CRC32C.

Policy additions::

    {"identities": {"etl-a": {"email": "etl-a@p.iam.gserviceaccount.com", "grants": [...],
        "iam_policy": [{"role": "roles/iam.serviceAccountTokenCreator",
                        "members": ["serviceAccount:composer-env@p.iam.gserviceaccount.com"]}]}},
     "secrets": {"projects/p/secrets/db-password": {"versions": {"1": "value"},
        "iam_policy": [{"role": "roles/secretmanager.secretAccessor",
                        "members": ["serviceAccount:etl-a@p.iam.gserviceaccount.com"]}]}}}

Errors have the Google API shape (``{"error": {"code", "message", "status", "details"}}``) and the
messages the real services give for a denial.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from local.iam_front import Policy

TOKEN_CREATOR = "roles/iam.serviceAccountTokenCreator"
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
MINTED_PREFIX = "local-minted-"
MAX_LIFETIME = 3600
_GENERATE = re.compile(r"^/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken$")
_ACCESS = re.compile(r"^/v1/(projects/([^/]+)/secrets/([^/]+))/versions/([^/:]+):access$")
_LIFETIME = re.compile(r"^(\d+(?:\.\d+)?)s$")


def google_error(code: int, status: str, message: str, **info: Any) -> web.Response:
    """An error in the Google API shape (what gcloud, the client libraries and our library parse)."""
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", **info}] if info else []
    return web.json_response(
        {"error": {"code": code, "message": message, "status": status, "details": details}}, status=code
    )


def has_role(iam_policy: list[dict[str, Any]], role: str, email: str) -> bool:
    """Whether a resource's bindings give ``role`` to ``serviceAccount:email``.

    :param iam_policy: the resource's bindings (``[{"role", "members"}]``).
    :param role: the role asked for.
    :param email: the caller's service account email.
    """
    member = f"serviceAccount:{email}"
    return any(b.get("role") == role and member in b.get("members", []) for b in iam_policy)


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli) of ``data``, as Secret Manager reports ``dataCrc32c``."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


@dataclass
class MintedTokens:
    """Short-lived tokens handed out by generateAccessToken: token -> (account, expiry epoch)."""

    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)

    def mint(self, account: str, lifetime: int) -> tuple[str, float]:
        """A new token for ``account`` valid ``lifetime`` seconds; returns (token, expiry epoch)."""
        token = f"{MINTED_PREFIX}{account}-{secrets.token_hex(8)}"
        expiry = time.time() + lifetime
        self.tokens[token] = (account, expiry)
        return token, expiry

    def account(self, token: str) -> str | None:
        """The account a minted token stands for, None when unknown or expired."""
        found = self.tokens.get(token)
        if found is None:
            return None
        if found[1] <= time.time():
            del self.tokens[token]
            return None
        return found[0]


class GoogleApis:
    """aiohttp handlers for generateAccessToken and versions:access."""

    def __init__(self, policy: Policy, minted: MintedTokens) -> None:
        self.policy, self.minted = policy, minted

    def caller(self, request: web.Request) -> tuple[str, dict[str, Any]] | None:
        """(account, identity entry) of the request's bearer token (a pod's or a minted one)."""
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        return self.policy.identity(token, self.minted)

    async def generate_access_token(self, request: web.Request) -> web.Response:
        """``POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken``."""
        match = _GENERATE.match(request.path)
        if match is None:
            return google_error(404, "NOT_FOUND", f"no such method: {request.path}")
        who = self.caller(request)
        if who is None:
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        email = match.group(1)
        caller_email = str(who[1].get("email", who[0]))
        target = self.policy.by_email(email)
        if target is None:
            return google_error(404, "NOT_FOUND", f"Not found; Gaia id not found for email {email}")
        if not has_role(target[1].get("iam_policy", []), TOKEN_CREATOR, caller_email):
            return google_error(
                403,
                "PERMISSION_DENIED",
                "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
                reason="IAM_PERMISSION_DENIED",
                domain="iam.googleapis.com",
                metadata={"permission": "iam.serviceAccounts.getAccessToken"},
            )
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        lifetime = _lifetime(str(body.get("lifetime", f"{MAX_LIFETIME}s")))
        if lifetime is None:
            return google_error(400, "INVALID_ARGUMENT", f"lifetime must be between 1s and {MAX_LIFETIME}s")
        token, expiry = self.minted.mint(target[0], lifetime)
        expire = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return web.json_response({"accessToken": token, "expireTime": expire})

    async def access_secret(self, request: web.Request) -> web.Response:
        """``GET /v1/projects/P/secrets/S/versions/V:access``."""
        match = _ACCESS.match(request.path)
        if match is None:
            return google_error(404, "NOT_FOUND", f"no such method: {request.path}")
        who = self.caller(request)
        if who is None:
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        secret_name, version = match.group(1), match.group(4)
        resource = f"{secret_name}/versions/{version}"
        entry = self.policy.secret(secret_name)
        caller_email = str(who[1].get("email", who[0]))
        if entry is None or not has_role(entry.get("iam_policy", []), SECRET_ACCESSOR, caller_email):
            # Secret Manager answers a missing secret the caller may not see with the same denial.
            return google_error(
                403,
                "PERMISSION_DENIED",
                f"Permission 'secretmanager.versions.access' denied for resource '{resource}' "
                "(or it may not exist).",
                reason="IAM_PERMISSION_DENIED",
                domain="secretmanager.googleapis.com",
                metadata={"permission": "secretmanager.versions.access", "resource": resource},
            )
        versions: dict[str, str] = entry.get("versions", {})
        number = max(versions, key=int) if version == "latest" and versions else version
        if number not in versions:
            return google_error(
                404, "NOT_FOUND", f"Secret Version [{resource}] not found or has no versions."
            )
        data = versions[number].encode()
        return web.json_response(
            {
                "name": f"{secret_name}/versions/{number}",
                "payload": {"data": base64.b64encode(data).decode(), "dataCrc32c": str(crc32c(data))},
            }
        )


def _lifetime(text: str) -> int | None:
    match = _LIFETIME.match(text)
    if match is None:
        return None
    seconds = int(float(match.group(1)))
    return seconds if 1 <= seconds <= MAX_LIFETIME else None
