"""Header cache: by content md5, a script's header and its resolved plan, so a run reads and validates
only new or changed scripts.

Safe because the key is the object's content hash: the same md5 means the same header. Plans are reused
only while the settings are the same (a fingerprint of them is stored). One JSON object in the state bucket;
a lost or corrupt cache only costs reading the headers again.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from script_runner.directives import header_lines

if TYPE_CHECKING:
    from google.cloud.storage import Client

log = logging.getLogger(__name__)
_VERSION = 2


def directive_text(header: str) -> str:
    """The part of a header that matters: its comment block (keeps line numbers for error messages)."""
    return "\n".join(line for _, line in header_lines(header))


class HeaderCache:
    """md5 → header comment block, loaded once and saved once per discovery."""

    def __init__(
        self, client: Client | None = None, *, bucket: str = "", name: str = "", fingerprint: str = ""
    ) -> None:
        self.client, self.bucket, self.name, self.fingerprint = client, bucket, name, fingerprint
        self.entries: dict[str, str] = {}
        self.plans: dict[str, dict[str, Any]] = {}
        self.hits = 0
        self._dirty = False

    def load(self) -> HeaderCache:
        """Read the cache object; any problem leaves it empty."""
        if self.client is None:
            return self
        try:
            data = json.loads(self.client.bucket(self.bucket).blob(self.name).download_as_bytes())
            if data.get("version") == _VERSION and isinstance(data.get("entries"), dict):
                self.entries = data["entries"]
                if data.get("fingerprint") == self.fingerprint and isinstance(data.get("plans"), dict):
                    self.plans = data["plans"]
        except Exception:  # absent on the first run, or unreadable: start empty
            log.info("header cache %s not loaded; reading every header", self.name)
        return self

    def get(self, md5: str) -> str | None:
        """Cached header block for a content hash."""
        text = self.entries.get(md5) if md5 else None
        if text is not None:
            self.hits += 1
        return text

    def put(self, md5: str, header: str) -> None:
        """Remember a header block."""
        if md5 and self.entries.get(md5) != header:
            self.entries[md5] = header
            self._dirty = True

    def get_plan(self, md5: str) -> dict[str, Any] | None:
        """Resolved plan for a content hash under the same settings."""
        plan = self.plans.get(md5) if md5 else None
        if plan is not None:
            self.hits += 1
        return plan

    def put_plan(self, md5: str, plan: dict[str, Any]) -> None:
        """Remember a resolved plan."""
        if md5 and self.plans.get(md5) != plan:
            self.plans[md5] = plan
            self._dirty = True

    def save(self, keep: set[str]) -> None:
        """Write back, keeping only hashes still present in the source."""
        if self.client is None:
            return
        pruned = {k: v for k, v in self.entries.items() if k in keep}
        plans = {k: v for k, v in self.plans.items() if k in keep}
        if not self._dirty and len(pruned) == len(self.entries) and len(plans) == len(self.plans):
            return
        try:
            self.client.bucket(self.bucket).blob(self.name).upload_from_string(
                json.dumps(
                    {"version": _VERSION, "fingerprint": self.fingerprint, "entries": pruned, "plans": plans}
                ),
                content_type="application/json",
            )
        except Exception:
            log.warning("could not save the header cache %s", self.name, exc_info=True)
