"""Which object names a GCS JSON API upload (``/upload/storage/v1/b/{bucket}/o``) writes, read the way the
local emulator (fake-gcs-server) reads them, so the IAM front authorizes the object actually written.

The ``name`` query parameter, and for a multipart upload the ``name`` of its JSON metadata part (the first
part of the ``multipart/related`` body, parsed with the boundary ``Content-Type`` names; the data part is
never read), for a resumable upload's start the ``name`` of its JSON body. The emulator (as GCS) takes the
query's name over the metadata's; the front asks the permission for each, so neither can smuggle the other
in. A body that does not parse cleanly (two parts, the first a JSON object) gives no name: denied.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

# gsutil quotes a boundary holding '=' in single quotes (not RFC 2045): the emulator takes the quotes off
# when the value holds a character that needs quoting, and keeps them (as part of the value) otherwise.
_GSUTIL_BOUNDARY = re.compile(r"""boundary='([^']*[()<>@,;:"/\[\]?= ]+[^']*)'""")
_PLAIN_ENCODINGS = {"", "7bit", "8bit", "binary"}


def multipart_metadata(content_type: str, body: bytes) -> dict[str, Any] | None:
    """The JSON metadata part of a ``multipart/related`` upload (its first part), None when the body is not
    one metadata part and one data part cleanly separated by the boundary ``content_type`` names.

    :param content_type: the request's Content-Type (``multipart/related; boundary=...``; gsutil's
        ``boundary='...'`` as the emulator reads it).
    :param body: the request body.
    """
    header = _GSUTIL_BOUNDARY.sub(lambda m: f'boundary="{m.group(1)}"', content_type)
    if "\r" in header or "\n" in header:
        return None
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(f"Content-Type: {header}\r\n\r\n".encode("latin-1", "replace") + body)
    if message.get_content_type() != "multipart/related" or not message.get_boundary():
        return None
    parts = message.get_payload()
    if message.defects or not isinstance(parts, list) or len(parts) != 2:
        return None
    first = parts[0]
    if not isinstance(first, email.message.Message):
        return None
    encoding = str(first.get("Content-Transfer-Encoding", "")).strip().lower()
    if first.defects or encoding not in _PLAIN_ENCODINGS:
        return None
    raw = first.get_payload(decode=True)
    try:
        metadata = json.loads(raw) if isinstance(raw, bytes) else None
    except ValueError:
        return None
    return metadata if isinstance(metadata, dict) else None


def upload_names(request: web.Request, body: bytes) -> list[str] | None:
    """Every object name an upload to ``/upload/storage/v1/b/{bucket}/o`` may write, None when unreadable.

    The query's ``name`` (every one given), and the metadata's: a multipart upload's JSON metadata part, a
    resumable upload's start (its JSON body). A resumable upload's later requests carry ``upload_id`` and the
    name in the query (the emulator's ``Location``); their bodies are data and never read.
    """
    names = [n for n in request.query.getall("name", []) if n]
    upload_type = request.query.get("uploadType", "")
    if upload_type == "resumable" and "upload_id" in request.query:
        return names or None
    metadata: dict[str, Any] | None = {}
    if upload_type == "multipart":
        metadata = multipart_metadata(request.headers.get("Content-Type", ""), body)
    elif upload_type == "resumable" and body.strip():
        try:
            metadata = json.loads(body)
        except ValueError:
            metadata = None
    if not isinstance(metadata, dict):
        return None
    named = metadata.get("name")
    if named is not None and not isinstance(named, str):
        return None
    if named and named not in names:
        names.append(named)
    return names or None
