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


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(POLICY))
    return Policy(path)


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
            "POST",
            "/upload/storage/v1/b/b/o?uploadType=multipart",
            b'--s\r\n{"name": "m/n"}\r\n--s',
            [Need("storage.objects.create", "b", "m/n")],
            id="upload-multipart",
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


def test_iam_front_identity_from_token(policy: Policy) -> None:
    assert policy.identity("local-token-reader") is not None
    assert policy.identity("local-token-nobody") is None
    assert policy.identity(None) is None
    assert policy.identity("some-real-looking-token") is None


def test_iam_front_grants_respect_role_and_prefix(policy: Policy) -> None:
    who = policy.identity("local-token-reader")
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
    assert policy.identity("local-token-reader") is not None
    (tmp_path / "policy.json").write_text(json.dumps({"identities": {}}))
    import os

    os.utime(tmp_path / "policy.json", (1, 1))
    assert policy.identity("local-token-reader") is None
