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
def test_iam_front_shipped_policy_keeps_pods_out_of_worker_only_prefixes(root: str, account: str) -> None:
    who = Policy(SHIPPED_POLICY).identity(f"local-token-{account}")
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


def test_iam_front_shipped_policy_gives_pods_without_an_account_the_environments_identity() -> None:
    """Every pod has an identity: one naming no service account runs as the namespace's `default`."""
    who = Policy(SHIPPED_POLICY).identity("local-token-default")
    assert who is not None
    entry = who[1]
    assert entry["email"] == "composer-env@test-project.iam.gserviceaccount.com"
    assert Policy.allowed(entry, Need("storage.objects.get", "composer-bucket", "data/hello.sh"))
    assert Policy.allowed(entry, Need("storage.objects.list", "composer-bucket", "data/"), bucket_level=True)
    assert Policy.allowed(entry, Need("storage.objects.create", "composer-bucket-out", "copies/x.sh"))
    assert not Policy.allowed(entry, Need("storage.objects.create", "composer-bucket", "data/evil.sh"))


def test_iam_front_in_front_of_the_emulator_denies_a_pod_write_to_the_cache(gcs_emulator: str) -> None:
    """The real front (its own process, the shipped policy) before the real emulator."""
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
        ],
        cwd=SHIPPED_POLICY.parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def upload(name: str) -> int:
        request = urllib.request.Request(
            f"{base}/upload/storage/v1/b/composer-bucket/o?uploadType=media&name={name.replace('/', '%2F')}",
            data=b"{}",
            headers={"Authorization": "Bearer local-token-reader", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{base}/_iam/health", timeout=1).close()
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
    finally:
        front.terminate()
        front.wait(timeout=10)
