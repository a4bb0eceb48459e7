"""A thin IAM-enforcing front for the GCS emulator: the local stand-in for Cloud IAM on GCS.

fake-gcs-server lets anyone do anything. Every pod gets a token for the Google identity bound to its
Kubernetes service account from the Kubernetes double's metadata server (``local/kube_double/metadata.py``;
``default`` when it names none) and talks to this front (never to the emulator),
which maps the token to an identity, checks the permission the request needs against a policy file, and
either answers 403 the way GCS does or forwards the request to the emulator. It also answers
``testIamPermissions`` (bucket level), which the runner library's ``require`` uses.

Policy file (JSON)::

    {"identities": {"<service account>": {"email": "...", "grants": [
        {"bucket": "b", "prefix": "data/", "role": "roles/storage.objectViewer"}]}}}

A prefix narrows a grant to object names under it; ``*`` in a prefix matches one path segment.

Tokens are random, one per service account, drawn afresh at each stack start and written by
``local.pod_env`` to ``--tokens DIR`` (``DIR/<service account>.token``, which the metadata server hands the
pods of that account only; re-read when a file changes), or a token minted by the emulated IAM Credentials
API for another service account (``local/google_apis.py``, served here too with the emulated Secret Manager:
``CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS`` and ``..._SECRETMANAGER`` name this front in pods). No
token can be derived from an account's name.

An upload is authorized on the object names the emulator may write (``local/gcs_uploads.py``: the query's
``name`` and the JSON metadata's, never the data's).

``python -m local.iam_front --port 4490 --upstream http://127.0.0.1:4480 --policy local/iam/policy.json
--tokens local/.run/iam/tokens`` (add ``--https-port 4491 --cert C --key K`` for gsutil, which speaks https
only)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import ClientSession, web

from local.gcs_uploads import upload_names
from local.google_apis import GoogleApis, MintedTokens

log = logging.getLogger("iam_front")
ROLES: dict[str, set[str]] = {
    "roles/storage.objectViewer": {"storage.objects.get", "storage.objects.list"},
    "roles/storage.objectCreator": {"storage.objects.create"},
    "roles/storage.objectUser": {
        "storage.objects.get",
        "storage.objects.list",
        "storage.objects.create",
        "storage.objects.delete",
        "storage.objects.update",
    },
    "roles/storage.objectAdmin": {
        "storage.objects.get",
        "storage.objects.list",
        "storage.objects.create",
        "storage.objects.delete",
        "storage.objects.update",
        "storage.objects.getIamPolicy",
        "storage.objects.setIamPolicy",
    },
}
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@dataclass(frozen=True)
class Need:
    """One permission a request needs, on a bucket and an object name (or list prefix)."""

    permission: str
    bucket: str
    name: str = ""


class PodTokens:
    """The pods' tokens: ``DIR/<service account>.token`` (what the metadata server hands that account's pods),
    re-read when a file changes (each stack start draws new ones)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._seen: tuple[tuple[str, int], ...] = ()
        self._accounts: dict[str, str] = {}

    def account(self, token: str) -> str | None:
        """The service account whose token this is, None for any other string."""
        if self.directory is None or not token:
            return None
        files = sorted(self.directory.glob("*.token"))
        seen = tuple((f.name, f.stat().st_mtime_ns) for f in files)
        if seen != self._seen:
            accounts = {}
            for file in files:
                value = file.read_text().strip()
                if value:
                    accounts[value] = file.name.removesuffix(".token")
            self._accounts, self._seen = accounts, seen
        return self._accounts.get(token)


class Policy:
    """Who may do what, from the policy file; re-read when the file changes (tests edit it)."""

    def __init__(self, path: Path, tokens: Path | None = None) -> None:
        """:param path: the policy file.
        :param tokens: the folder of the pods' tokens (None: minted tokens only)."""
        self.path = path
        self.tokens = PodTokens(tokens)
        self._mtime = -1.0
        self._data: dict[str, Any] = {}

    def _load(self) -> dict[str, Any]:
        mtime = self.path.stat().st_mtime
        if mtime != self._mtime:
            self._data, self._mtime = json.loads(self.path.read_text()), mtime
        return self._data

    def identity(
        self, token: str | None, minted: MintedTokens | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        """(service account, entry) for a bearer token, None when the token is unknown or absent.

        :param token: a pod's token (from the tokens folder), or a token minted by generateAccessToken.
        :param minted: the tokens minted so far (None: pod tokens only).
        """
        if not token:
            return None
        account = minted.account(token) if minted is not None else None
        if account is None:
            account = self.tokens.account(token)
        if account is None:
            return None
        entry = self._load().get("identities", {}).get(account)
        return (account, entry) if entry is not None else None

    def by_email(self, email: str) -> tuple[str, dict[str, Any]] | None:
        """(service account, entry) of the identity with this email."""
        for account, entry in self._load().get("identities", {}).items():
            if entry.get("email") == email:
                return account, entry
        return None

    def secret(self, name: str) -> dict[str, Any] | None:
        """The Secret Manager secret ``projects/P/secrets/S`` (versions and bindings), None when absent."""
        found = self._load().get("secrets", {}).get(name)
        return found if isinstance(found, dict) else None

    @staticmethod
    def allowed(entry: dict[str, Any], need: Need, *, bucket_level: bool = False) -> bool:
        for grant in entry.get("grants", []):
            if grant.get("bucket") != need.bucket:
                continue
            if need.permission not in ROLES.get(grant.get("role", ""), set(grant.get("permissions", []))):
                continue
            prefix = grant.get("prefix", "")
            if bucket_level and prefix:
                continue  # testIamPermissions reports bucket-wide grants only, as GCS does
            if prefix_matches(prefix, need.name):
                return True
        return False


def prefix_matches(prefix: str, name: str) -> bool:
    """Whether an object name (or list prefix) is under a grant's prefix.

    ``*`` in a prefix stands for one path segment (``e2e-state/*/state/``: every test's own state root),
    what a real policy writes as an IAM condition on ``resource.name``.

    :param prefix: the grant's prefix ('' grants the whole bucket).
    :param name: the object name the request touches.
    """
    if "*" not in prefix:
        return name.startswith(prefix)
    pattern = "".join("[^/]+" if part == "*" else re.escape(part) for part in re.split(r"(\*)", prefix))
    return re.match(pattern, name) is not None


def needs_for(request: web.Request, body: bytes) -> list[Need]:
    """The permissions a GCS JSON API request needs (empty: unknown request, denied)."""
    parts = [unquote(p) for p in request.raw_path.split("?", 1)[0].split("/")]
    method, query = request.method, request.query
    # /upload/storage/v1/b/{bucket}/o?name=...  and  /download/storage/v1/b/{bucket}/o/{object}
    if len(parts) >= 7 and parts[1] == "upload" and parts[2:5] == ["storage", "v1", "b"] and parts[6] == "o":
        names = upload_names(request, body)
        return [Need("storage.objects.create", parts[5], name) for name in names or []]
    if len(parts) >= 8 and parts[1] == "download" and parts[2:5] == ["storage", "v1", "b"]:
        return [Need("storage.objects.get", parts[5], "/".join(parts[7:]))]
    if len(parts) < 5 or parts[1:4] != ["storage", "v1", "b"]:
        return []
    bucket, rest = parts[4], parts[5:]
    if not rest:
        return [Need("storage.objects.list", bucket, "")] if method == "GET" else []
    if rest == ["o"]:
        return [Need("storage.objects.list", bucket, query.get("prefix", ""))] if method == "GET" else []
    if rest[0] != "o" or len(rest) < 2:
        return []
    obj = "/".join(rest[1:])
    for verb in ("rewriteTo", "copyTo"):
        if f"/{verb}/b/" in obj:
            src, _, dst = obj.partition(f"/{verb}/b/")
            dst_bucket, _, dst_name = dst.partition("/o/")
            return [
                Need("storage.objects.get", bucket, src),
                Need("storage.objects.create", dst_bucket, dst_name),
            ]
    if obj.endswith("/compose"):
        return [Need("storage.objects.create", bucket, obj.removesuffix("/compose"))]
    permission = {
        "GET": "storage.objects.get",
        "DELETE": "storage.objects.delete",
        "PATCH": "storage.objects.update",
        "PUT": "storage.objects.update",
    }.get(method)
    return [Need(permission, bucket, obj)] if permission else []


def gcs_error(code: int, message: str) -> web.Response:
    body = {
        "error": {"code": code, "message": message, "errors": [{"message": message, "reason": "forbidden"}]}
    }
    return web.json_response(body, status=code)


class Front:
    """The aiohttp handlers: testIamPermissions, and check-then-forward for everything else."""

    def __init__(self, upstream: str, policy: Policy, minted: MintedTokens | None = None) -> None:
        self.upstream, self.policy = upstream.rstrip("/"), policy
        self.minted = minted or MintedTokens()
        self.session: ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        who = self.policy.identity(
            auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None, self.minted
        )
        if who is None:
            return gcs_error(
                401, "Anonymous caller or unknown token: the local IAM front needs a pod identity"
            )
        account, entry = who
        email = entry.get("email", account)
        if request.path.endswith("/iam/testPermissions"):
            bucket = request.path.split("/")[4]
            granted = [
                p
                for p in request.query.getall("permissions", [])
                if Policy.allowed(entry, Need(p, bucket), bucket_level=True)
            ]
            return web.json_response({"kind": "storage#testIamPermissionsResponse", "permissions": granted})
        body = await request.read()
        needs = needs_for(request, body)
        if not needs:
            return gcs_error(403, f"{email}: the local IAM front does not know this request; denied")
        for need in needs:
            if not Policy.allowed(entry, need):
                target = f"gs://{need.bucket}/{need.name}"
                log.info("denied %s %s on %s", email, need.permission, target)
                return gcs_error(
                    403,
                    f"{email} does not have {need.permission} access to the Google Cloud Storage object "
                    f"{target}. Permission '{need.permission}' denied on resource (or it may not exist).",
                )
        return await self.forward(request, body)

    async def forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP | {"authorization"}}
        async with self.session.request(
            request.method,
            self.upstream + request.raw_path,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as resp:
            payload = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
            return web.Response(status=resp.status, body=payload, headers=out)


def add_google_api_routes(app: web.Application, front: Front) -> None:
    """Serve the emulated IAM Credentials and Secret Manager calls (``local/google_apis.py``) on ``app``.

    :param app: the front's application (before its catch-all GCS route).
    :param front: the front, whose policy and minted tokens the calls share.
    """
    apis = GoogleApis(front.policy, front.minted)
    app.router.add_post("/v1/projects/-/serviceAccounts/{target}", apis.generate_access_token)
    app.router.add_get("/v1/projects/{project}/secrets/{secret}/versions/{version}", apis.access_secret)


async def _ok() -> web.Response:
    return web.json_response({"ok": True})


async def serve(args: argparse.Namespace) -> None:
    front = Front(args.upstream, Policy(Path(args.policy), Path(args.tokens)))
    front.session = ClientSession()
    app = web.Application(client_max_size=1 << 30)
    app.router.add_get("/_iam/health", lambda _request: _ok())
    add_google_api_routes(app, front)
    app.router.add_route("*", "/{tail:.*}", front.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    log.info("IAM front on http://%s:%d -> %s (policy %s)", args.host, args.port, args.upstream, args.policy)
    if args.https_port:
        # gsutil speaks https only: the same front on a TLS port, with the emulator's certificate.
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
        await web.TCPSite(runner, args.host, args.https_port, ssl_context=tls).start()
        log.info("IAM front on https://%s:%d", args.host, args.https_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await front.session.close()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.iam_front", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4490)
    parser.add_argument("--upstream", default="http://127.0.0.1:4480")
    parser.add_argument("--policy", required=True)
    parser.add_argument(
        "--tokens", required=True, help="DIR/<service account>.token: the pods' tokens (local.pod_env)"
    )
    parser.add_argument(
        "--https-port", type=int, help="also serve https here (for gsutil); needs --cert/--key"
    )
    parser.add_argument("--cert", help="PEM certificate for --https-port")
    parser.add_argument("--key", help="PEM private key for --https-port")
    args = parser.parse_args(argv)
    if args.https_port and not (args.cert and args.key):
        parser.error("--https-port needs --cert and --key")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
