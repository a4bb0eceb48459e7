"""A storage client that counts its GCS requests, for the tests and benchmarks that pin how many round trips
a code path makes (the ledger's unit tests, ``bench/hotpath.py``)."""

from __future__ import annotations

from typing import Any


class CountingClient:
    """Wraps a ``google.cloud.storage.Client`` and counts the requests made through it: listings and
    downloads as reads, uploads as writes. It offers what the ledger uses: ``list_blobs`` and
    ``bucket(name).blob(name)``.

    :param client: the real client (against the GCS emulator).
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.reads = 0
        self.writes = 0

    @property
    def requests(self) -> int:
        """Every request so far, reads and writes."""
        return self.reads + self.writes

    def list_blobs(self, *args: Any, **kwargs: Any) -> Any:
        """The client's ``list_blobs``, counted as one read.

        :param args: passed on.
        :param kwargs: passed on.
        """
        self.reads += 1
        return self.client.list_blobs(*args, **kwargs)

    def bucket(self, name: str) -> _CountingBucket:
        """A bucket whose blobs count their downloads and uploads.

        :param name: the bucket's name.
        """
        return _CountingBucket(self, self.client.bucket(name))


class _CountingBucket:
    def __init__(self, counter: CountingClient, bucket: Any) -> None:
        self._counter, self._bucket = counter, bucket

    def blob(self, blob_name: str) -> Any:
        blob = self._bucket.blob(blob_name)
        download, upload = blob.download_as_bytes, blob.upload_from_string
        counter = self._counter

        def counted_download(*a: Any, **k: Any) -> Any:
            counter.reads += 1
            return download(*a, **k)

        def counted_upload(*a: Any, **k: Any) -> Any:
            counter.writes += 1
            return upload(*a, **k)

        blob.download_as_bytes, blob.upload_from_string = counted_download, counted_upload
        return blob
