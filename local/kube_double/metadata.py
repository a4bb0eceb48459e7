"""A local GKE metadata server: each pod asks it for the token of the identity bound to its service account.

On GKE the metadata server tells pods apart by their pod IP. Here every pod gets its own loopback address
(127.77.x.y) with its own listener, handed to the pod in the standard overrides (``GCE_METADATA_HOST``,
``GCE_METADATA_ROOT``, ``GCE_METADATA_IP``); the address a request arrives on names the pod. The subset
served is the GCE metadata API that clients use for credentials, as gcloud, gsutil, bq and google-auth
read it: ``instance/service-accounts/`` (the listing), ``instance/service-accounts/{default|EMAIL}/``
``{token,email,scopes,aliases}`` (and ``?recursive=true`` on the account), ``project/project-id``,
``project/numeric-project-id`` (gcloud's "am I on GCE" probe), ``instance/zone`` and
``universe/universe-domain``, all under ``/computeMetadata/v1/``, only with the ``Metadata-Flavor: Google``
header, every answer carrying that header. A pod whose service account has no identity gets 404 for
everything about service accounts, as GKE answers a pod whose Kubernetes service account is not bound.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger("kube_double.metadata")
FLAVOR = {"Metadata-Flavor": "Google"}
_ROOT = "/computeMetadata/v1/"
_ACCOUNTS = "instance/service-accounts/"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
NUMERIC_PROJECT_ID = "123456789012"
ZONE = "projects/123456789012/zones/local-a"
_FIRST = int(ipaddress.IPv4Address("127.77.0.2"))
_LAST = int(ipaddress.IPv4Address("127.77.255.254"))
TOKEN_SECONDS = 3599


@dataclass
class _Lease:
    address: str
    port: int
    service_account: str
    site: web.TCPSite


@dataclass
class MetadataServer:
    """Per-pod listeners of one metadata app; tokens are read from ``identity_dir/<account>.token`` per call.

    :param identity_dir: DIR/<service account>.token and .email, as for ``--identity-dir``.
    :param project_id: what ``project/project-id`` answers.
    """

    identity_dir: Path
    project_id: str = "local-project"
    leases: dict[str, _Lease] = field(default_factory=dict)  # pod uid -> its listener
    _by_address: dict[str, str] = field(default_factory=dict)  # address -> pod uid
    _next: int = _FIRST
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.get("/{tail:.*}", self._handle)])
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()

    async def stop(self) -> None:
        for uid in list(self.leases):
            await self.close(uid)
        if self._runner is not None:
            await self._runner.cleanup()

    async def open(self, uid: str, service_account: str) -> dict[str, str]:
        """A listener for this pod; the env that points its clients at it.

        :param service_account: the pod's ``spec.serviceAccountName``.
        """
        if uid in self.leases:
            lease = self.leases[uid]
        else:
            assert self._runner is not None, "start() the metadata server first"
            address = self._allocate()
            site = web.TCPSite(self._runner, address, 0)
            await site.start()
            port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
            lease = _Lease(address, port, service_account, site)
            self.leases[uid], self._by_address[address] = lease, uid
        host = f"{lease.address}:{lease.port}"
        return {"GCE_METADATA_HOST": host, "GCE_METADATA_ROOT": host, "GCE_METADATA_IP": host}

    async def reopen(self, uid: str, service_account: str, host: str) -> None:
        """The listener of a pod that runs on from before a restart of the double, at its old address.

        :param service_account: the pod's ``spec.serviceAccountName``.
        :param host: ``address:port`` the pod was given (in its ``GCE_METADATA_HOST``).
        """
        assert self._runner is not None, "start() the metadata server first"
        address, _, port = host.rpartition(":")
        site = web.TCPSite(self._runner, address, int(port))
        await site.start()
        self.leases[uid], self._by_address[address] = _Lease(address, int(port), service_account, site), uid

    async def close(self, uid: str) -> None:
        """Stop the pod's listener (the pod is gone)."""
        lease = self.leases.pop(uid, None)
        if lease is not None:
            self._by_address.pop(lease.address, None)
            await lease.site.stop()

    def _allocate(self) -> str:
        for _ in range(_LAST - _FIRST + 1):
            address = str(ipaddress.IPv4Address(self._next))
            self._next = self._next + 1 if self._next < _LAST else _FIRST
            if address not in self._by_address:
                return address
        raise RuntimeError("no free loopback address for a pod's metadata server")

    def _identity(self, account: str) -> tuple[str, str] | None:
        token = self.identity_dir / f"{account}.token"
        if not account or not token.is_file():
            return None
        email = self.identity_dir / f"{account}.email"
        return token.read_text().strip(), email.read_text().strip() if email.is_file() else account

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path in ("", "/"):
            return web.Response(text="computeMetadata/\n", headers=FLAVOR)
        if request.headers.get("Metadata-Flavor") != "Google" or "X-Forwarded-For" in request.headers:
            return web.Response(status=403, text="Missing Metadata-Flavor:Google header.\n", headers=FLAVOR)
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        uid = self._by_address.get(str(sockname[0])) if sockname else None
        lease = self.leases.get(uid or "")
        if lease is None or not request.path.startswith(_ROOT):
            return _not_found()
        path = request.path[len(_ROOT) :]
        fixed = {
            "project/project-id": self.project_id,
            "project/numeric-project-id": NUMERIC_PROJECT_ID,
            "instance/zone": ZONE,
            "universe/universe-domain": "googleapis.com",
        }
        if path in fixed:
            return web.Response(text=fixed[path], headers=FLAVOR)
        if not (path + "/").startswith(_ACCOUNTS):  # gsutil asks for the listing without the slash
            return _not_found()
        identity = self._identity(lease.service_account)
        if identity is None:
            log.info("metadata: %s for a pod without an identity (%s)", request.path, lease.service_account)
            return _not_found()
        return _account_answer(
            (path + "/")[len(_ACCOUNTS) :].rstrip("/"), identity, request.query.get("recursive") == "true"
        )


def _not_found() -> web.Response:
    return web.Response(status=404, text="Not Found\n", headers=FLAVOR)


def _account_answer(tail: str, identity: tuple[str, str], recursive: bool) -> web.Response:
    """One answer under ``instance/service-accounts/``: the listing, or an entry of one account.

    :param tail: the path after ``instance/service-accounts/``.
    :param identity: (token, email) of the pod's account.
    :param recursive: ``?recursive=true`` (the account as one JSON object).
    """
    token, email = identity
    if tail == "":
        return web.Response(text=f"default/\n{email}/\n", headers=FLAVOR)
    name, _, entry = tail.partition("/")
    if name not in ("default", email):
        return _not_found()
    info = {"aliases": ["default"], "email": email, "scopes": SCOPES}
    if entry == "" and recursive:
        return web.json_response(info, headers=FLAVOR)
    if entry == "":
        return web.Response(text="aliases\nemail\nidentity\nscopes\ntoken\n", headers=FLAVOR)
    if entry == "token":
        body = {"access_token": token, "expires_in": TOKEN_SECONDS, "token_type": "Bearer"}
        return web.json_response(body, headers=FLAVOR)
    if entry in ("email", "aliases", "scopes"):
        value = info[entry]
        return web.Response(text=value if isinstance(value, str) else "\n".join(value) + "\n", headers=FLAVOR)
    return _not_found()
