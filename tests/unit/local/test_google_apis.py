"""The emulated IAM Credentials (generateAccessToken) and Secret Manager (versions:access) calls, served by
the IAM front with a policy file, driven over HTTP; a minted token then authorizes GCS as its account."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from local.google_apis import crc32c
from local.iam_front import Front, Policy, add_google_api_routes

ENV = "composer-env@p.iam.gserviceaccount.com"
A = "etl-a@p.iam.gserviceaccount.com"
SECRET = "projects/p/secrets/a-password"
POLICY = {
    "identities": {
        "default": {"email": ENV, "grants": []},
        "etl-a": {
            "email": A,
            "grants": [{"bucket": "b", "prefix": "a/", "role": "roles/storage.objectViewer"}],
            "iam_policy": [
                {"role": "roles/iam.serviceAccountTokenCreator", "members": [f"serviceAccount:{ENV}"]}
            ],
        },
        "etl-b": {"email": "etl-b@p.iam.gserviceaccount.com", "grants": []},
    },
    "secrets": {
        SECRET: {
            "versions": {"1": "old", "2": "s3cr3t value"},
            "iam_policy": [
                {"role": "roles/secretmanager.secretAccessor", "members": [f"serviceAccount:{A}"]}
            ],
        }
    },
}

SHIPPED_POLICY = Path(__file__).resolve().parents[3] / "local" / "iam" / "policy.json"
# The pods' tokens, random as a stack start draws them (DIR/<account>.token).
DEFAULT_TOKEN = secrets.token_urlsafe(32)
ETL_B_TOKEN = secrets.token_urlsafe(32)
Call = Callable[..., Awaitable[tuple[int, Any]]]


def run_with_front(tmp_path: Path, test: Callable[[Call], Awaitable[None]]) -> None:
    """Serve a front (no upstream: GCS calls that pass IAM answer 502 here) and run ``test(call)``."""
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(POLICY))
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "default.token").write_text(DEFAULT_TOKEN)
    (tokens / "etl-b.token").write_text(ETL_B_TOKEN)

    async def main() -> None:
        front = Front("http://127.0.0.1:9", Policy(path, tokens))
        app = web.Application()
        add_google_api_routes(app, front)

        async def gcs(request: web.Request) -> web.StreamResponse:
            # Authorization only: a request that passes IAM answers 299 instead of being forwarded.
            async def allowed(_request: web.Request, _body: bytes) -> web.Response:
                return web.Response(status=299)

            front.forward = allowed  # type: ignore[method-assign]
            return await front.handle(request)

        app.router.add_route("*", "/{tail:.*}", gcs)
        async with TestClient(TestServer(app)) as client:

            async def call(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
                headers = {"Authorization": f"Bearer {token}"}
                async with client.request(method, url, headers=headers, json=body) as resp:
                    text = await resp.text()
                    return resp.status, (json.loads(text) if text.startswith("{") else text)

            await test(call)

    asyncio.run(main())


def test_generate_access_token_mints_a_token_that_acts_as_the_target(tmp_path: Path) -> None:
    async def test(call: Call) -> None:
        url = f"/v1/projects/-/serviceAccounts/{A}:generateAccessToken"
        status, body = await call("POST", url, DEFAULT_TOKEN, {"lifetime": "600s"})
        assert status == 200, body
        token = body["accessToken"]
        assert token.startswith("local-minted-etl-a-")
        assert body["expireTime"].endswith("Z")
        # The minted token is etl-a: it reads a/, not what etl-a may not.
        assert (await call("GET", "/storage/v1/b/b/o/a%2Fx", token))[0] == 299
        status, denied = await call("GET", "/storage/v1/b/b/o/b%2Fx", token)
        assert status == 403
        assert A in denied["error"]["message"]
        # The pod's own token is not etl-a.
        assert (await call("GET", "/storage/v1/b/b/o/a%2Fx", DEFAULT_TOKEN))[0] == 403

    run_with_front(tmp_path, test)


@pytest.mark.parametrize(
    ("caller", "target", "status", "message"),
    [
        pytest.param(
            DEFAULT_TOKEN,
            "etl-b@p.iam.gserviceaccount.com",
            403,
            "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
            id="no-token-creator-binding",
        ),
        pytest.param(
            ETL_B_TOKEN,
            A,
            403,
            "Permission 'iam.serviceAccounts.getAccessToken' denied",
            id="another-caller",
        ),
        pytest.param(
            DEFAULT_TOKEN,
            "nobody@p.iam.gserviceaccount.com",
            404,
            "Gaia id not found",
            id="unknown",
        ),
        pytest.param("bogus", A, 401, "invalid authentication credentials", id="no-identity"),
        pytest.param(
            "local-token-default",
            A,
            401,
            "invalid authentication credentials",
            id="token-made-up-from-a-name",
        ),
    ],
)
def test_generate_access_token_refuses_like_iam_credentials(
    tmp_path: Path, caller: str, target: str, status: int, message: str
) -> None:
    async def test(call: Call) -> None:
        got, body = await call(
            "POST", f"/v1/projects/-/serviceAccounts/{target}:generateAccessToken", caller, {}
        )
        assert got == status
        assert message in body["error"]["message"]
        assert body["error"]["status"] in {"PERMISSION_DENIED", "NOT_FOUND", "UNAUTHENTICATED"}

    run_with_front(tmp_path, test)


def test_a_minted_token_expires(tmp_path: Path) -> None:
    async def test(call: Call) -> None:
        url = f"/v1/projects/-/serviceAccounts/{A}:generateAccessToken"
        _, body = await call("POST", url, DEFAULT_TOKEN, {"lifetime": "1s"})
        assert (await call("GET", "/storage/v1/b/b/o/a%2Fx", body["accessToken"]))[0] == 299
        await asyncio.sleep(1.2)
        assert (await call("GET", "/storage/v1/b/b/o/a%2Fx", body["accessToken"]))[0] == 401
        bad = await call("POST", url, DEFAULT_TOKEN, {"lifetime": "99999s"})
        assert bad[0] == 400

    run_with_front(tmp_path, test)


def test_access_secret_answers_the_accessor_with_the_value_and_denies_others(tmp_path: Path) -> None:
    async def test(call: Call) -> None:
        url = f"/v1/projects/-/serviceAccounts/{A}:generateAccessToken"
        _, minted = await call("POST", url, DEFAULT_TOKEN, {})
        status, body = await call("GET", f"/v1/{SECRET}/versions/latest:access", minted["accessToken"])
        assert status == 200, body
        assert body["name"] == f"{SECRET}/versions/2"
        data = base64.b64decode(body["payload"]["data"])
        assert data == b"s3cr3t value"
        assert body["payload"]["dataCrc32c"] == str(google_crc32c.value(data))
        status, body = await call("GET", f"/v1/{SECRET}/versions/1:access", minted["accessToken"])
        assert base64.b64decode(body["payload"]["data"]) == b"old"
        assert (await call("GET", f"/v1/{SECRET}/versions/9:access", minted["accessToken"]))[0] == 404
        # The environment's own identity is no accessor: denied, naming the permission and the version.
        status, body = await call("GET", f"/v1/{SECRET}/versions/latest:access", DEFAULT_TOKEN)
        assert status == 403
        assert body["error"]["message"] == (
            f"Permission 'secretmanager.versions.access' denied for resource '{SECRET}/versions/latest' "
            "(or it may not exist)."
        )
        assert "s3cr3t" not in json.dumps(body)
        # A secret that does not exist is denied the same way (no existence oracle).
        status, _ = await call(
            "GET", "/v1/projects/p/secrets/nope/versions/latest:access", minted["accessToken"]
        )
        assert status == 403

    run_with_front(tmp_path, test)


def test_crc32c_matches_the_reference() -> None:
    for data in (b"", b"a", b"s3cr3t value", bytes(range(256))):
        assert crc32c(data) == google_crc32c.value(data)


def test_shipped_policy_lets_the_environment_impersonate_etl_a_and_b_but_not_etl_c() -> None:
    from local.google_apis import TOKEN_CREATOR, has_role

    policy = json.loads(SHIPPED_POLICY.read_text())
    env_email = policy["identities"]["default"]["email"]
    ids = policy["identities"]
    assert has_role(ids["etl-a"]["iam_policy"], TOKEN_CREATOR, env_email)
    assert has_role(ids["etl-b"]["iam_policy"], TOKEN_CREATOR, env_email)
    assert not has_role(ids["etl-c"].get("iam_policy", []), TOKEN_CREATOR, env_email)
