"""local.demo.replace_prefix against the GCS emulator: how the demo and the e2e harness upload scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from local.demo import replace_prefix


def test_replace_prefix_uploads_the_folder_and_drops_what_was_under_the_prefix_only(
    gcs_client: Any, make_bucket: Any, tmp_path: Path
) -> None:
    bucket = make_bucket({"old.sh": "echo old\n"})
    bucket.blob("keep/other.sh").upload_from_string("echo other\n")
    (tmp_path / "team").mkdir()
    (tmp_path / "a.sh").write_text("echo a\n")
    (tmp_path / "team" / "b.sh").write_text("echo b\n")

    names = replace_prefix(gcs_client, bucket.name, tmp_path, "data/")

    assert names == ["data/a.sh", "data/team/b.sh"]
    assert sorted(b.name for b in gcs_client.list_blobs(bucket.name)) == [
        "data/a.sh",
        "data/team/b.sh",
        "keep/other.sh",
    ]
    assert bucket.blob("data/team/b.sh").download_as_bytes() == b"echo b\n"
