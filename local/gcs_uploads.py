"""Which object names a GCS JSON API upload (``/upload/storage/v1/b/{bucket}/o``) writes, read the way the
local emulator (fake-gcs-server) reads them, so the IAM front authorizes the object actually written.

The ``name`` query parameter, and for a multipart upload the ``name`` of its JSON metadata part (the first
part of the ``multipart/related`` body, parsed with the boundary ``Content-Type`` names; the data part is
never read), for a resumable upload's start the ``name`` of its JSON body. The emulator (as GCS) takes the
query's name over the metadata's; the front asks the permission for each, so neither can smuggle the other
in (nor a second ``name`` member: the emulator reads them case-insensitively). A body that does not parse
cleanly (two parts, the first a JSON object) gives no name: denied.
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


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in order, duplicates kept (``json.loads``' ``object_pairs_hook``)."""


def metadata_names(raw: bytes) -> list[str] | None:
    """Every object name a JSON metadata object gives; None when it is no JSON object or a name no string.

    The emulator's JSON decoder (Go's) matches the ``name`` member case-insensitively and keeps the last of
    duplicates: every such member counts, so none can hide behind another.
    """
    try:
        members = json.loads(raw, object_pairs_hook=_Pairs)
    except ValueError:
        return None
    if not isinstance(members, _Pairs):
        return None
    names = [value for key, value in members if key.lower() == "name"]
    return names if all(isinstance(n, str) for n in names) else None


def multipart_metadata(content_type: str, body: bytes) -> bytes | None:
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
    return raw if isinstance(raw, bytes) else None


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
    named: list[str] | None = []
    if upload_type == "multipart":
        raw = multipart_metadata(request.headers.get("Content-Type", ""), body)
        named = metadata_names(raw) if raw is not None else None
    elif upload_type == "resumable" and body.strip():
        named = metadata_names(body)
    if named is None:
        return None
    names += [n for n in named if n and n not in names]
    return names or None
