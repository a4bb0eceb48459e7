"""What ``k8s/setup-identity.sh`` and ``k8s/setup-upload.sh`` call through the real gcloud, on one local port.

gcloud reaches it through ``CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE`` (``URL/storage/v1/``), ``..._IAM`` and
``..._PUBSUB`` (``URL/``). Like the real services it keeps state and refuses what they refuse:

Cloud Storage (``/storage/v1/``)
    ``GET b/B`` (a bucket with uniform bucket-level access), ``GET|PUT b/B/iam`` (the policy with its etag;
    gcloud adds the binding itself, as for :mod:`tests.bucket_iam_double`), ``GET|POST b/B/notificationConfigs``
    and ``DELETE b/B/notificationConfigs/ID``: a notification needs an existing topic (400 otherwise), and
    a second identical one is *accepted*, as GCS does: each would publish every upload once more, so
    avoiding duplicates is the caller's job. ``GET projects/P/serviceAccount``: the storage service agent.
IAM (``/v1/projects/P/serviceAccounts``)
    ``GET .../EMAIL`` (404 NOT_FOUND when unknown), ``POST`` create (409 ALREADY_EXISTS when the account
    exists), ``EMAIL:getIamPolicy`` / ``EMAIL:setIamPolicy``.
Pub/Sub (``/v1/projects/P/topics|subscriptions``)
    forwarded to the Pub/Sub emulator (its own AlreadyExists and NotFound answers), except
    ``:getIamPolicy`` / ``:setIamPolicy``, which the emulator leaves unimplemented: kept here, for resources
    the emulator has.

Every call needs ``Authorization: Bearer <token>``; errors have the Google API shape.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.http_double import ServedDouble

AGENT = "service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
_BUCKET = re.compile(r"^/storage/v1/b/([^/]+)(/iam|/notificationConfigs(?:/([^/]+))?)?$")
_AGENT = re.compile(r"^/storage/v1/projects/([^/]+)/serviceAccount$")
_ACCOUNTS = re.compile(
    r"^/v1/projects/([^/]+)/serviceAccounts(?:/([^/:]+))?(?::(getIamPolicy|setIamPolicy))?$"
)
_PUBSUB = re.compile(
    r"^/v1/projects/([^/]+)/(topics|subscriptions)/([^/:]+)(?::(getIamPolicy|setIamPolicy))?$"
)


def _error(code: int, status: str, message: str) -> tuple[int, Any]:
    return code, {"error": {"code": code, "message": message, "status": status}}


class SetupApis(ServedDouble):
    """The three APIs in memory (Pub/Sub through the emulator) on 127.0.0.1, a free port, until :meth:`stop`.

    :param token: the bearer token every call must carry.
    :param pubsub: the emulator's base URL (``http://host:port``).
    :param buckets: the buckets that exist (their policies start empty).
    """

    def __init__(self, *, token: str, pubsub: str, buckets: list[str]) -> None:
        self.token = token
        self.pubsub = pubsub
        self.policies: dict[str, dict[str, Any]] = {b: {"bindings": [], "etag": "CAE="} for b in buckets}
        self.notifications: dict[str, list[dict[str, Any]]] = {b: [] for b in buckets}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.account_policies: dict[str, dict[str, Any]] = {}
        self.pubsub_policies: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self._serial = 0
        self._lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                path = self.path.split("?")[0]
                length = int(self.headers.get("Content-Length", "0") or 0)
                raw = self.rfile.read(length) if length else b""
                double.calls.append(f"{self.command} {path}")
                if self.headers.get("Authorization") != f"Bearer {double.token}":
                    status, body = _error(
                        401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
                    )
                else:
                    with double._lock:
                        status, body = double.answer(self.command, path, self.path, raw)
                out = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.serve(Handler)

    def _etag(self) -> str:
        self._serial += 1
        return base64.b64encode(self._serial.to_bytes(4, "big")).decode()

    def answer(self, method: str, path: str, full: str, raw: bytes) -> tuple[int, Any]:
        """One call's status and JSON body.

        :param method: the HTTP method.
        :param path: the path without its query.
        :param full: the path with its query (forwarded as is to the emulator).
        :param raw: the request body.
        """
        body = json.loads(raw) if raw else {}
        if m := _BUCKET.match(path):
            return self._bucket(method, m.group(1), m.group(2) or "", m.group(3), body)
        if m := _AGENT.match(path):
            return 200, {"kind": "storage#serviceAccount", "email_address": AGENT}
        if m := _ACCOUNTS.match(path):
            return self._account(method, m.group(1), m.group(2), m.group(3), body)
        if m := _PUBSUB.match(path):
            name = f"projects/{m.group(1)}/{m.group(2)}/{m.group(3)}"
            if m.group(4):
                return self._pubsub_policy(name, m.group(4), body)
            return self._forward(method, full, raw)
        return _error(404, "NOT_FOUND", f"not emulated: {method} {path}")

    # -- Cloud Storage -------------------------------------------------------------------------------------
    def _bucket(self, method: str, bucket: str, sub: str, config: str | None, body: Any) -> tuple[int, Any]:
        if bucket not in self.policies:
            return _error(404, "NOT_FOUND", "The specified bucket does not exist.")
        if not sub and method == "GET":
            return 200, {
                "kind": "storage#bucket",
                "name": bucket,
                "id": bucket,
                "location": "US-CENTRAL1",
                "storageClass": "STANDARD",
                "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True}},
            }
        if sub == "/iam" and method == "GET":
            return 200, {
                "kind": "storage#policy",
                "resourceId": f"projects/_/buckets/{bucket}",
                **self.policies[bucket],
            }
        if sub == "/iam" and method == "PUT":
            if body.get("etag") and body["etag"] != self.policies[bucket]["etag"]:
                return _error(412, "FAILED_PRECONDITION", "Precondition Failed")
            policy = {k: v for k, v in body.items() if k in ("bindings", "version")}
            self.policies[bucket] = {**policy, "etag": self._etag()}
            return 200, {"kind": "storage#policy", **self.policies[bucket]}
        if sub == "/notificationConfigs" and method == "GET":
            return 200, {"kind": "storage#notifications", "items": self.notifications[bucket]}
        if sub == "/notificationConfigs" and method == "POST":
            return self._notify(bucket, body)
        if sub.startswith("/notificationConfigs/") and method == "DELETE":
            kept = [n for n in self.notifications[bucket] if n["id"] != config]
            if len(kept) == len(self.notifications[bucket]):
                return _error(404, "NOT_FOUND", "Not Found")
            self.notifications[bucket] = kept
            return 204, None
        return _error(405, "METHOD_NOT_ALLOWED", f"not emulated: {method} b/{bucket}{sub}")

    def _notify(self, bucket: str, body: dict[str, Any]) -> tuple[int, Any]:
        topic = str(body.get("topic", ""))
        name = topic.removeprefix("//pubsub.googleapis.com/")
        status, _ = self._forward("GET", f"/v1/{name}", b"")
        if status != 200:
            return _error(
                400,
                "INVALID_ARGUMENT",
                f"Invalid Google Cloud Pub/Sub topic. It should look like "
                f"'//pubsub.googleapis.com/projects/*/topics/*' and exist: {topic}",
            )
        self._serial += 1
        config: dict[str, Any] = {
            "kind": "storage#notification",
            "id": str(self._serial),
            "selfLink": f"/storage/v1/b/{bucket}/notificationConfigs/{self._serial}",
            "etag": str(self._serial),
            **{k: body[k] for k in ("event_types", "object_name_prefix", "payload_format") if k in body},
            "topic": f"//pubsub.googleapis.com/{name}",  # GCS answers the full resource name
        }
        self.notifications[bucket].append(config)  # a duplicate is accepted, as GCS does
        return 200, config

    # -- IAM service accounts ------------------------------------------------------------------------------
    def _account(
        self, method: str, project: str, email: str | None, verb: str | None, body: Any
    ) -> tuple[int, Any]:
        if email is None and method == "POST":
            account_id = str(body.get("accountId", ""))
            new = f"{account_id}@{project}.iam.gserviceaccount.com"
            if new in self.accounts:
                return _error(
                    409,
                    "ALREADY_EXISTS",
                    f"Service account {account_id} already exists within project projects/{project}.",
                )
            self.accounts[new] = {
                "name": f"projects/{project}/serviceAccounts/{new}",
                "projectId": project,
                "email": new,
                "uniqueId": str(100000000000000000000 + len(self.accounts)),
                **dict(body.get("serviceAccount") or {}),
            }
            self.account_policies[new] = {"etag": "ACAB"}
            return 200, self.accounts[new]
        if email is None or email not in self.accounts:
            return _error(404, "NOT_FOUND", f"Unknown service account: {email}")
        if verb is None and method == "GET":
            return 200, self.accounts[email]
        if verb == "getIamPolicy":
            return 200, self.account_policies[email]
        if verb == "setIamPolicy":
            return 200, self._set_policy(self.account_policies, email, body)
        return _error(405, "METHOD_NOT_ALLOWED", f"not emulated: {method} {email}")

    def _set_policy(self, store: dict[str, dict[str, Any]], key: str, body: Any) -> dict[str, Any]:
        policy = dict(body.get("policy") or {})
        store[key] = {
            **{k: v for k, v in policy.items() if k in ("bindings", "version")},
            "etag": self._etag(),
        }
        return store[key]

    # -- Pub/Sub -------------------------------------------------------------------------------------------
    def _pubsub_policy(self, name: str, verb: str, body: Any) -> tuple[int, Any]:
        status, answer = self._forward("GET", f"/v1/{name}", b"")
        if status != 200:
            return status, answer
        if verb == "getIamPolicy":
            return 200, self.pubsub_policies.get(name, {"etag": "ACAB"})
        return 200, self._set_policy(self.pubsub_policies, name, body)

    def _forward(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        req = urllib.request.Request(
            f"{self.pubsub}{path}",
            data=raw or None,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                data = resp.read()
                return resp.status, json.loads(data) if data else {}
        except urllib.error.HTTPError as exc:
            data = exc.read()
            return exc.code, json.loads(data) if data else None
