"""local.gcs_counting.CountingClient against the GCS emulator: each listing, download and upload is one."""

from __future__ import annotations

from typing import Any

from local.gcs_counting import CountingClient


def test_counting_client_counts_listings_and_downloads_as_reads_and_uploads_as_writes(
    gcs_client: Any, make_bucket: Any
) -> None:
    name = make_bucket({"a.sh": "echo a\n"}).name
    counting = CountingClient(gcs_client)
    assert [b.name for b in counting.list_blobs(name, prefix="data/")] == ["data/a.sh"]
    assert counting.bucket(name).blob("data/a.sh").download_as_bytes() == b"echo a\n"
    counting.bucket(name).blob("data/b.sh").upload_from_string("echo b\n")
    counting.bucket(name).blob("data/c.sh")  # a handle alone sends nothing
    assert (counting.reads, counting.writes, counting.requests) == (2, 1, 3)
    assert gcs_client.bucket(name).blob("data/b.sh").download_as_bytes() == b"echo b\n"
