"""The files ``deploy`` puts under the bucket's ``dags/``: the DAG file, the package, ``.airflowignore``.

:func:`file_actions` compares them with the bucket (MD5) and lists uploads, unchanged files and package files
to delete. The environment's own ``.airflowignore`` is merged, never overwritten (:func:`merge_ignore`).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from script_runner.exceptions import DeployError

if TYPE_CHECKING:
    from pathlib import Path

    from google.cloud import storage

DAG_FILE = "gcs_script_runner.py"
# The Airflow 2.11 upload watcher (defines no DAG on Airflow 3, where the runner DAG watches the asset).
UPLOAD_DAG_FILE = "gcs_script_runner_upload.py"
PACKAGE = "script_runner"
IGNORE_FILE = ".airflowignore"
SKIPPED_PARTS = ("__pycache__",)
SKIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class FileAction:
    """One object under ``dags/``: uploaded, already current, or deleted (gone from the package).

    ``content`` replaces the local file's bytes (``.airflowignore``, merged with the environment's own).
    """

    name: str
    action: Literal["upload", "unchanged", "delete"]
    local: Path | None = None
    content: bytes | None = None


def local_files(dags_dir: Path) -> dict[str, Path]:
    """Object name under the bucket -> local file: the DAG file, ``.airflowignore``, the package.

    :param dags_dir: the folder with ``gcs_script_runner.py``, ``.airflowignore`` and ``script_runner/``.
    """
    out: dict[str, Path] = {}
    for name in (DAG_FILE, UPLOAD_DAG_FILE, IGNORE_FILE):
        path = dags_dir / name
        if not path.is_file():
            raise DeployError(f"{path} is missing: run deploy from a checkout (or pass --dags-dir)")
        out[f"dags/{name}"] = path
    package = dags_dir / PACKAGE
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(dags_dir)
        if path.is_file() and not set(rel.parts) & set(SKIPPED_PARTS) and path.suffix not in SKIPPED_SUFFIXES:
            out[f"dags/{rel.as_posix()}"] = path
    return out


def file_actions(dags_dir: Path, bucket_name: str, client: storage.Client) -> list[FileAction]:
    wanted = local_files(dags_dir)
    remote = {b.name: b.md5_hash for b in client.list_blobs(bucket_name, prefix=f"dags/{PACKAGE}/")}
    contents: dict[str, bytes] = {}
    for name in (DAG_FILE, UPLOAD_DAG_FILE, IGNORE_FILE):
        blob = client.bucket(bucket_name).get_blob(f"dags/{name}")
        if blob is not None:
            remote[blob.name] = blob.md5_hash
            if name == IGNORE_FILE:
                # Through the client's endpoint (gcloud's storage override), not the object's mediaLink,
                # which names the server's own public host; the generation just listed.
                fresh = client.bucket(bucket_name).blob(blob.name)
                contents[blob.name] = fresh.download_as_bytes(if_generation_match=blob.generation)
    ignore = f"dags/{IGNORE_FILE}"
    merged_ignore = merge_ignore(contents.get(ignore), wanted[ignore].read_bytes())
    actions = []
    for name, path in sorted(wanted.items()):
        body = merged_ignore if name == ignore else path.read_bytes()
        same = remote.get(name) == _md5(body)
        actions.append(
            FileAction(
                name=name,
                action="unchanged" if same else "upload",
                local=path,
                content=merged_ignore if name == ignore else None,
            )
        )
    actions += [FileAction(name=name, action="delete") for name in sorted(set(remote) - set(wanted))]
    return actions


def merge_ignore(existing: bytes | None, ours: bytes) -> bytes:
    """The environment's ``.airflowignore`` with our lines appended where missing (theirs are kept).

    :param existing: the bucket's ``dags/.airflowignore`` (None: there is none).
    :param ours: this checkout's ``.airflowignore``.
    """
    if not existing:
        return ours
    text = existing.decode(errors="replace")
    have = {line.strip() for line in text.splitlines()}
    missing = [line for line in ours.decode().splitlines() if line.strip() and line.strip() not in have]
    if not missing:
        return existing
    return (text if text.endswith("\n") else text + "\n").encode() + "\n".join(missing).encode() + b"\n"


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()
