"""The local IAM front: which permission each GCS request needs, and who is allowed what."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from local.iam_front import Need, Policy, needs_for

POLICY = {
    "identities": {
        "reader": {
            "email": "reader@p.iam.gserviceaccount.com",
            "grants": [
                {"bucket": "b", "role": "roles/storage.objectViewer"},
                {"bucket": "b", "prefix": "state/", "role": "roles/storage.objectUser"},
            ],
        }
    }
}


READER_TOKEN = "rT0k-" + "x" * 40


def write_tokens(directory: Path, tokens: dict[str, str]) -> Path:
    """``directory/<account>.token`` for each account: the pods' tokens, as ``local.pod_env`` writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    for account, token in tokens.items():
        (directory / f"{account}.token").write_text(token)
    return directory


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(POLICY))
    return Policy(path, write_tokens(tmp_path / "tokens", {"reader": READER_TOKEN}))


def shipped_token(tmp_path: Path, account: str) -> tuple[Policy, str]:
    """The shipped policy with a random token for ``account`` (what a stack start draws)."""
    import secrets

    token = secrets.token_urlsafe(32)
    return Policy(SHIPPED_POLICY, write_tokens(tmp_path / "tokens", {account: token})), token


def multipart(boundary: str, metadata: bytes, data: bytes) -> bytes:
    """A multipart/related upload body as the Cloud SDK and the runner library send it."""
    b = boundary.encode()
    return (
        b"--" + b + b"\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n" + metadata + b"\r\n"
        b"--" + b + b"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
        b"--" + b + b"--\r\n"
    )


def upload(query: str, content_type: str, body: bytes) -> list[Need]:
    request = make_mocked_request(
        "POST", f"/upload/storage/v1/b/b/o?{query}", headers={"Content-Type": content_type}
    )
    return needs_for(request, body)


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        pytest.param(
            "GET",
            "/storage/v1/b/b/o?prefix=data/",
            b"",
            [Need("storage.objects.list", "b", "data/")],
            id="list",
        ),
        pytest.param(
            "GET",
            "/storage/v1/b/b/o/data%2Fa.sh?alt=media",
            b"",
            [Need("storage.objects.get", "b", "data/a.sh")],
            id="get",
        ),
        pytest.param(
            "GET",
            "/download/storage/v1/b/b/o/data%2Fa.sh",
            b"",
            [Need("storage.objects.get", "b", "data/a.sh")],
            id="download",
        ),
        pytest.param(
            "POST",
            "/upload/storage/v1/b/b/o?uploadType=media&name=x%2Fy",
            b"",
            [Need("storage.objects.create", "b", "x/y")],
            id="upload-media",
        ),
        pytest.param(
            "DELETE", "/storage/v1/b/b/o/a", b"", [Need("storage.objects.delete", "b", "a")], id="delete"
        ),
        pytest.param(
            "POST",
            "/storage/v1/b/b/o/a%2Fs/rewriteTo/b/out/o/c%2Fd",
            b"",
            [Need("storage.objects.get", "b", "a/s"), Need("storage.objects.create", "out", "c/d")],
            id="rewrite",
        ),
        pytest.param("POST", "/storage/v1/b", b"", [], id="bucket-create-unknown"),
    ],
)
def test_iam_front_needs_for_each_request(method: str, path: str, body: bytes, expected: list[Need]) -> None:
    assert needs_for(make_mocked_request(method, path), body) == expected


def test_iam_front_multipart_upload_is_authorized_on_its_metadata_part() -> None:
    body = multipart("runner-123", b'{"name": "state/a.sh/x"}', b"hello")
    assert upload("uploadType=multipart", "multipart/related; boundary=runner-123", body) == [
        Need("storage.objects.create", "b", "state/a.sh/x")
    ]


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param(
            "multipart/related; boundary='===============7330845974216740156=='", id="gsutil-quotes"
        ),
        pytest.param(
            'multipart/related; boundary="===============7330845974216740156=="', id="double-quotes"
        ),
    ],
)
def test_iam_front_multipart_upload_reads_a_quoted_boundary(content_type: str) -> None:
    """gsutil and gcloud put '=' in the boundary and quote it (gsutil in single quotes): the parts are the ones
    that boundary separates, so a decoy before the first boundary is not the metadata."""
    boundary = "===============7330845974216740156=="
    body = b'--decoy\r\n\r\n{"name": "state/decoy"}\r\n' + multipart(
        boundary, b'{"name": "cache/x"}', b"data"
    )
    assert upload("uploadType=multipart", content_type, body) == [
        Need("storage.objects.create", "b", "cache/x")
    ]


def test_iam_front_multipart_data_naming_another_object_does_not_change_the_target() -> None:
    """A hostile pod hides a name in the data part: the front authorizes on the metadata's name only."""
    body = multipart("bnd", b'{"contentType": "text/plain", "name": "state/ok"}', b'{"name": "cache/evil"}')
    assert upload("uploadType=multipart", "multipart/related; boundary=bnd", body) == [
        Need("storage.objects.create", "b", "state/ok")
    ]
    # Nor does a "name" anywhere but the metadata's own field: a custom metadata key written first.
    body = multipart("bnd", b'{"metadata": {"name": "state/ok"}, "name": "cache/evil"}', b"x")
    assert upload("uploadType=multipart", "multipart/related; boundary=bnd", body) == [
        Need("storage.objects.create", "b", "cache/evil")
    ]
    # Nor a second "name" the emulator's JSON decoder reads too (it matches members case-insensitively and
    # keeps the last): each one needs the permission.
    body = multipart("bnd", b'{"name": "state/ok", "Name": "cache/evil"}', b"x")
    assert upload("uploadType=multipart", "multipart/related; boundary=bnd", body) == [
        Need("storage.objects.create", "b", "state/ok"),
        Need("storage.objects.create", "b", "cache/evil"),
    ]
    # Nor a name in the preamble, before the first boundary (which the emulator skips).
    body = b'{"name": "state/ok"}\r\n' + multipart("bnd", b'{"name": "cache/evil"}', b"x")
    assert upload("uploadType=multipart", "multipart/related; boundary=bnd", body) == [
        Need("storage.objects.create", "b", "cache/evil")
    ]


def test_iam_front_multipart_name_in_the_query_is_authorized_too() -> None:
    body = multipart("bnd", b'{"contentType": "text/plain"}', b'{"name": "cache/evil"}')
    assert upload("uploadType=multipart&name=state%2Fq", "multipart/related; boundary=bnd", body) == [
        Need("storage.objects.create", "b", "state/q")
    ]
    # Both named: the emulator takes the query's; each must be allowed, so neither can smuggle the other.
    body = multipart("bnd", b'{"name": "cache/evil"}', b"x")
    assert upload("uploadType=multipart&name=state%2Fq", "multipart/related; boundary=bnd", body) == [
        Need("storage.objects.create", "b", "state/q"),
        Need("storage.objects.create", "b", "cache/evil"),
    ]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param("multipart/related", multipart("bnd", b'{"name": "state/x"}', b"x"), id="no-boundary"),
        pytest.param(
            "multipart/related; boundary=other",
            multipart("bnd", b'{"name": "state/x"}', b"x"),
            id="wrong-boundary",
        ),
        pytest.param(
            "multipart/related; boundary=bnd",
            multipart("bnd", b'{"name": "state/x"}', b"x").removesuffix(b"--bnd--\r\n"),
            id="unterminated",
        ),
        pytest.param(
            "multipart/related; boundary=bnd", multipart("bnd", b"name=state/x", b"x"), id="not-json"
        ),
        pytest.param(
            "multipart/related; boundary=bnd", multipart("bnd", b"{}", b'{"name": "x"}'), id="no-name"
        ),
        pytest.param("application/json", b'{"name": "state/x"}', id="not-multipart"),
    ],
)
def test_iam_front_multipart_upload_it_cannot_read_is_denied(content_type: str, body: bytes) -> None:
    assert upload("uploadType=multipart", content_type, body) == []


def test_iam_front_resumable_upload_is_authorized_on_its_start_and_never_on_data() -> None:
    start = upload("uploadType=resumable", "application/json", b'{"name": "state/r", "contentType": "x"}')
    assert start == [Need("storage.objects.create", "b", "state/r")]
    chunk = upload(
        "uploadType=resumable&name=state%2Fr&upload_id=abc", "text/plain", b'{"name": "cache/evil"}'
    )
    assert chunk == [Need("storage.objects.create", "b", "state/r")]
    assert upload("uploadType=resumable&upload_id=abc", "text/plain", b'{"name": "state/r"}') == []


def test_iam_front_identity_from_token(policy: Policy) -> None:
    assert policy.identity(READER_TOKEN) is not None
    assert policy.identity(None) is None
    assert policy.identity("") is None
    assert policy.identity("some-real-looking-token") is None


def test_iam_front_refuses_a_token_made_up_from_an_accounts_name(policy: Policy) -> None:
    """A pod cannot act as another account by guessing its token from the account's name."""
    assert policy.identity("local-token-reader") is None
    assert policy.identity("reader") is None
    assert policy.identity(READER_TOKEN + "x") is None


def test_iam_front_pod_tokens_are_reread_when_a_stack_start_draws_new_ones(
    policy: Policy, tmp_path: Path
) -> None:
    assert policy.identity(READER_TOKEN) is not None
    write_tokens(tmp_path / "tokens", {"reader": "a-new-token-for-the-reader"})
    import os

    os.utime(tmp_path / "tokens" / "reader.token", ns=(1, 1))
    assert policy.identity(READER_TOKEN) is None
    assert policy.identity("a-new-token-for-the-reader") is not None


def test_iam_front_grants_respect_role_and_prefix(policy: Policy) -> None:
    who = policy.identity(READER_TOKEN)
    assert who is not None
    entry = who[1]
    assert Policy.allowed(entry, Need("storage.objects.get", "b", "data/a.sh"))
    assert not Policy.allowed(entry, Need("storage.objects.create", "b", "data/a.sh"))
    assert Policy.allowed(entry, Need("storage.objects.create", "b", "state/x"))
    assert not Policy.allowed(entry, Need("storage.objects.get", "other", "a"))
    # testIamPermissions answers bucket-wide grants only
    assert not Policy.allowed(entry, Need("storage.objects.create", "b"), bucket_level=True)
    assert Policy.allowed(entry, Need("storage.objects.list", "b"), bucket_level=True)


def test_iam_front_policy_is_reloaded_when_the_file_changes(policy: Policy, tmp_path: Path) -> None:
    assert policy.identity(READER_TOKEN) is not None
    (tmp_path / "policy.json").write_text(json.dumps({"identities": {}}))
    import os

    os.utime(tmp_path / "policy.json", (1, 1))
    assert policy.identity(READER_TOKEN) is None


SHIPPED_POLICY = Path(__file__).resolve().parents[3] / "local" / "iam" / "policy.json"
WORKER_ONLY = [
    "cache/headers.json",
    "cache/done/a.sh/x/20261130T1300Z",  # done-markers: the Airflow side's alone (issue 25 item 8)
    "done/a.sh/x/2026-11-30",  # where pods wrote them before
    "ledger/run/a.sh.json",
    "reports/run.json",
]
POD_WRITABLE = ["state/a.sh/20261130T1300Z/x/load", "once/a.sh/boot", "events/run/a.sh/1.json"]


@pytest.mark.parametrize("root", ["script-runner", "e2e-state/0123abcd"])
@pytest.mark.parametrize("account", ["default", "reader", "writer"])
def test_iam_front_shipped_policy_keeps_pods_out_of_worker_only_prefixes(
    root: str, account: str, tmp_path: Path
) -> None:
    policy, token = shipped_token(tmp_path, account)
    who = policy.identity(token)
    assert who is not None
    entry = who[1]
    for name in WORKER_ONLY:
        for permission in ("storage.objects.create", "storage.objects.update", "storage.objects.delete"):
            assert not Policy.allowed(entry, Need(permission, "composer-bucket", f"{root}/{name}")), name
        assert Policy.allowed(entry, Need("storage.objects.get", "composer-bucket", f"{root}/{name}"))
    for name in POD_WRITABLE:
        assert Policy.allowed(entry, Need("storage.objects.create", "composer-bucket", f"{root}/{name}")), (
            name
        )
    # '*' is one path segment, never a way around the prefix
    assert not Policy.allowed(
        entry, Need("storage.objects.create", "composer-bucket", "e2e-state/a/b/state/x")
    )
    assert not Policy.allowed(entry, Need("storage.objects.create", "composer-bucket", "e2e-state/state/x"))


def test_iam_front_shipped_policy_gives_pods_without_an_account_the_environments_identity(
    tmp_path: Path,
) -> None:
    """Every pod has an identity: one naming no service account runs as the namespace's `default`."""
    policy, token = shipped_token(tmp_path, "default")
    who = policy.identity(token)
    assert who is not None
    entry = who[1]
    assert entry["email"] == "composer-env@test-project.iam.gserviceaccount.com"
    assert Policy.allowed(entry, Need("storage.objects.get", "composer-bucket", "data/hello.sh"))
    assert Policy.allowed(entry, Need("storage.objects.list", "composer-bucket", "data/"), bucket_level=True)
    assert Policy.allowed(entry, Need("storage.objects.create", "composer-bucket-out", "copies/x.sh"))
    assert not Policy.allowed(entry, Need("storage.objects.create", "composer-bucket", "data/evil.sh"))


def test_iam_front_in_front_of_the_emulator_denies_a_pod_write_to_the_cache(
    gcs_emulator: str, tmp_path: Path
) -> None:
    """The real front (its own process, the shipped policy, the pods' tokens) before the real emulator."""
    import secrets
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from tests.conftest import free_port

    urllib.request.urlopen(
        urllib.request.Request(
            f"{gcs_emulator}/storage/v1/b?project=test-project",
            data=json.dumps({"name": "composer-bucket"}).encode(),
            headers={"Content-Type": "application/json"},
        )
    ).close()
    tokens = {account: secrets.token_urlsafe(32) for account in ("reader", "writer")}
    port = free_port()
    front = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.iam_front",
            "--port",
            str(port),
            "--upstream",
            gcs_emulator,
            "--policy",
            str(SHIPPED_POLICY),
            "--tokens",
            str(write_tokens(tmp_path / "tokens", tokens)),
        ],
        cwd=SHIPPED_POLICY.parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/upload/storage/v1/b/composer-bucket/o"

    def send(query: str, body: bytes, content_type: str, token: str = tokens["reader"]) -> int:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
        try:
            with urllib.request.urlopen(
                urllib.request.Request(f"{base}?{query}", body, headers), timeout=10
            ) as r:
                return int(r.status)
        except urllib.error.HTTPError as err:
            return err.code

    def upload(name: str, token: str = tokens["reader"]) -> int:
        return send(f"uploadType=media&name={name.replace('/', '%2F')}", b"{}", "application/json", token)

    def exists(name: str) -> bool:
        try:
            urllib.request.urlopen(
                f"{gcs_emulator}/storage/v1/b/composer-bucket/o/{name.replace('/', '%2F')}", timeout=10
            ).close()
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return False
            raise
        return True

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_iam/health", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the IAM front did not start"
                time.sleep(0.1)
        assert upload("script-runner/cache/headers.json") == 403
        assert upload("script-runner/ledger/run/a.sh.json") == 403
        assert upload("script-runner/reports/run.json") == 403
        assert upload("script-runner/state/a.sh/2026-11-30/load") == 200
        assert upload("e2e-state/0123abcd/state/a.sh/x/2026-11-30") == 200
        assert upload("e2e-state/0123abcd/done/a.sh/x/2026-11-30") == 403  # done-markers: Airflow's alone
        assert upload("e2e-state/0123abcd/cache/done/a.sh/x/20261130T1300Z") == 403
        assert upload("e2e-state/0123abcd/cache/headers.json") == 403
        # Tokens are the drawn ones: a token made up from an account's name is nobody's.
        assert upload("script-runner/state/guessed", "local-token-reader") == 401
        assert upload("script-runner/state/guessed", "local-token-writer") == 401
        assert upload("script-runner/state/writer", tokens["writer"]) == 200
        # Multipart, gsutil's quoted boundary: the object the metadata names is the one written.
        boundary = "===============7330845974216740156=="
        gsutil = f"multipart/related; boundary='{boundary}'"
        ok = multipart(boundary, b'{"name": "script-runner/state/mp"}', b'{"name": "script-runner/cache/x"}')
        assert send("uploadType=multipart", ok, gsutil) == 200
        assert exists("script-runner/state/mp")
        assert not exists("script-runner/cache/x")
        # A hostile body: the metadata names the cache, the data part a pod-writable name. Denied, not written.
        evil = multipart(
            boundary, b'{"name": "script-runner/cache/evil"}', b'{"name": "script-runner/state/x"}'
        )
        assert send("uploadType=multipart", evil, gsutil) == 403
        # ... or a custom metadata key "name" written before the object's own name.
        meta = b'{"metadata": {"name": "script-runner/state/x"}, "name": "script-runner/cache/evil"}'
        assert send("uploadType=multipart", multipart(boundary, meta, b"x"), gsutil) == 403
        # ... or a second name member the emulator reads (case-insensitively, the last one wins).
        meta = b'{"name": "script-runner/state/x", "NAME": "script-runner/cache/evil"}'
        assert send("uploadType=multipart", multipart(boundary, meta, b"x"), gsutil) == 403
        assert not exists("script-runner/cache/evil")
        # The query's name and the metadata's both need the permission (the emulator takes the query's).
        both = multipart(boundary, b'{"name": "script-runner/cache/evil"}', b"x")
        assert send("uploadType=multipart&name=script-runner%2Fstate%2Fq", both, gsutil) == 403
        assert not exists("script-runner/state/q")
        assert not exists("script-runner/cache/evil")
    finally:
        front.terminate()
        front.wait(timeout=10)
