"""A local GKE metadata server: each pod asks it for the token of the identity bound to its service account.

On GKE the metadata server tells pods apart by their pod IP. Here every pod gets its own loopback address
(127.77.x.y) with its own listener, handed to the pod in the standard overrides (``GCE_METADATA_HOST``,
``GCE_METADATA_ROOT``, ``GCE_METADATA_IP``); the address a request arrives on names the pod. The subset
served is the GCE metadata API that clients use for credentials: ``/computeMetadata/v1/instance/
service-accounts/default/{token,email,}`` and ``/computeMetadata/v1/project/project-id``, only with the
``Metadata-Flavor: Google`` header, every answer carrying that header.
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
_SA_PREFIX = "/computeMetadata/v1/instance/service-accounts/default"
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
        if lease is None:
            return web.Response(status=404, text="Not Found\n", headers=FLAVOR)
        if request.path == "/computeMetadata/v1/project/project-id":
            return web.Response(text=self.project_id, headers=FLAVOR)
        identity = self._identity(lease.service_account)
        if identity is None or not request.path.startswith(_SA_PREFIX):
            log.info("metadata: %s for a pod without an identity (%s)", request.path, lease.service_account)
            return web.Response(status=404, text="Not Found\n", headers=FLAVOR)
        token, email = identity
        tail = request.path[len(_SA_PREFIX) :].strip("/")
        if tail == "token":
            body = {"access_token": token, "expires_in": TOKEN_SECONDS, "token_type": "Bearer"}
            return web.json_response(body, headers=FLAVOR)
        if tail == "email":
            return web.Response(text=email, headers=FLAVOR)
        if tail == "":
            info = {
                "aliases": ["default"],
                "email": email,
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            }
            return web.json_response(info, headers=FLAVOR)
        return web.Response(status=404, text="Not Found\n", headers=FLAVOR)
