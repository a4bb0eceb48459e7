"""Discovery's pooled ranged reads against the real GCS emulator (fake-gcs-server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.cloud import storage

from script_runner.config.settings_loader import load_settings
from script_runner.discover import ranged_reads
from script_runner.discover.discovery import discover
from script_runner.discover.sources import GcsSource

GOOD = "#!/bin/bash\n# runner: cpu=250m memory=256Mi\necho ok\n"


def settings_for(bucket: str) -> Any:
    return load_settings(environ={"GCS_BUCKET": bucket, "SCRIPT_RUNNER_PRESET": "local"})


def test_pooled_reads_return_each_objects_first_bytes_in_order(make_bucket: Any, gcs_client: Any) -> None:
    bucket = make_bucket({f"s{i:02}.sh": f"#!/bin/bash\n# {i}\n" + "x" * 5000 for i in range(40)})
    source = GcsSource(settings_for(bucket.name), gcs_client)
    objs = source.list()
    reads = source.read_headers(objs, 256, 8)
    assert [r[:16] for r in reads] == [f"#!/bin/bash\n# {i}\n".encode()[:16] for i in range(40)]
    assert {len(r) for r in reads} == {256}  # a ranged read: never the whole 5 kB object


def test_one_unreadable_object_is_an_error_value_and_the_others_are_read(
    make_bucket: Any, gcs_client: Any
) -> None:
    bucket = make_bucket({"a.sh": GOOD, "gone.sh": GOOD, "c.sh": GOOD})
    source = GcsSource(settings_for(bucket.name), gcs_client)
    objs = source.list()
    bucket.blob("data/gone.sh").delete()  # deleted between the listing and the read
    reads = source.read_headers(objs, 1024, 4)
    assert [o.path for o in objs] == ["a.sh", "c.sh", "gone.sh"]
    assert reads[0] == reads[1] == GOOD.encode()
    assert isinstance(reads[2], ranged_reads.RangedReadError)
    assert "404" in str(reads[2])


def test_discovery_reads_headers_without_a_storage_client_call_per_script(
    make_bucket: Any, gcs_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client's per-download CPU was the cold path's cost: the headers go over one pooled session.
    bucket = make_bucket({f"team/job{i}.sh": GOOD.replace("echo ok", f"echo {i}") for i in range(30)})
    downloads: list[str] = []
    real = storage.Blob.download_as_bytes

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        downloads.append(self.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(storage.Blob, "download_as_bytes", counting)
    result = discover(settings_for(bucket.name), client=gcs_client)
    assert len(result.specs) == 30
    assert [d for d in downloads if d.startswith("data/team/")] == []


def test_pooled_reads_work_inside_a_running_event_loop(make_bucket: Any, gcs_client: Any) -> None:
    bucket = make_bucket({"a.sh": GOOD})
    source = GcsSource(settings_for(bucket.name), gcs_client)
    objs = source.list()

    async def inside() -> Any:
        return source.read_headers(objs, 64, 2)

    assert asyncio.run(inside()) == [GOOD.encode()]


def test_reads_fall_back_to_the_storage_client_when_the_session_cannot_be_set_up(
    make_bucket: Any, gcs_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_token(client: Any) -> dict[str, str]:
        raise RuntimeError("no token")

    monkeypatch.setattr(ranged_reads, "auth_headers", no_token)
    bucket = make_bucket({"a.sh": GOOD})
    source = GcsSource(settings_for(bucket.name), gcs_client)
    assert source.read_headers(source.list(), 1024, 2) == [GOOD.encode()]


def test_auth_headers_carry_the_clients_own_token() -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.oauth2.credentials import Credentials

    class Client:
        _credentials: Any = Credentials(token="tok")

    assert ranged_reads.auth_headers(Client()) == {"authorization": "Bearer tok"}
    Client._credentials = AnonymousCredentials()
    assert ranged_reads.auth_headers(Client()) == {}


def test_media_url_pins_the_generation_and_quotes_the_name() -> None:
    url = ranged_reads.media_url("https://storage.googleapis.com/", "b", "data/a b/c#.sh", "17")
    assert url == (
        "https://storage.googleapis.com/download/storage/v1/b/b/o/data%2Fa%20b%2Fc%23.sh?alt=media&generation=17"
    )
