"""Header cache: by content md5, a script's header and its resolved plan, so a run reads and validates
only new or changed scripts.

Safe because the key is the object's content hash: the same md5 means the same header. Plans are reused
only while the settings are the same (a fingerprint of them is stored). Two objects in the state bucket:

- ``<name>``: the plans, deduplicated (most scripts share a few directive sets) and indexed by md5. Loaded
  on every run; small, so a warm discovery costs little more than the listing.
- ``<name>.headers``: the header comment blocks by md5, read only when some plan is missing (a new or
  changed script, or changed settings).

A lost or corrupt cache only costs reading the headers again.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from script_runner.directives import header_lines

if TYPE_CHECKING:
    from google.cloud.storage import Client

log = logging.getLogger(__name__)
_VERSION = 4  # 4: deduplicated plans in the wire form; headers in their own object


def directive_text(header: str) -> str:
    """The part of a header that matters: its comment block (keeps line numbers for error messages)."""
    return "\n".join(line for _, line in header_lines(header))


class HeaderCache:
    """md5 → header comment block and md5 → plan, loaded once and saved once per discovery."""

    def __init__(
        self, client: Client | None = None, *, bucket: str = "", name: str = "", fingerprint: str = ""
    ) -> None:
        self.client, self.bucket, self.name, self.fingerprint = client, bucket, name, fingerprint
        self.plans: dict[str, dict[str, Any]] = {}
        self.hits = 0
        self._entries: dict[str, str] | None = None  # headers: loaded on first need
        self._plans_dirty = False
        self._entries_dirty = False
        self._loaded = False

    # -- loading ----------------------------------------------------------------------------------
    def ensure_loaded(self) -> HeaderCache:
        """Load the plans once (discovery calls this while it lists the source)."""
        return self if self._loaded else self.load()

    def load(self) -> HeaderCache:
        """Read the plans object; any problem leaves it empty."""
        self._loaded = True
        data = self._read(self.name)
        if data.get("fingerprint") == self.fingerprint:
            table, index = data.get("plans"), data.get("index")
            if isinstance(table, list) and isinstance(index, dict):
                try:
                    self.plans = {md5: table[i] for md5, i in index.items()}
                except (IndexError, TypeError):
                    log.info("header cache %s is inconsistent; validating every script", self.name)
        return self

    @property
    def entries(self) -> dict[str, str]:
        """Header blocks by md5 (read from the bucket the first time they are needed)."""
        if self._entries is None:
            data = self._read(self.name + ".headers")
            entries = data.get("entries")
            self._entries = entries if isinstance(entries, dict) else {}
        return self._entries

    def _read(self, name: str) -> dict[str, Any]:
        if self.client is None:
            return {}
        try:
            data = json.loads(self.client.bucket(self.bucket).blob(name).download_as_bytes())
        except Exception:  # absent on the first run, or unreadable: start empty
            log.info("header cache %s not loaded", name)
            return {}
        return data if isinstance(data, dict) and data.get("version") == _VERSION else {}

    # -- lookups ----------------------------------------------------------------------------------
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
            self._entries_dirty = True

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
            self._plans_dirty = True

    # -- saving -----------------------------------------------------------------------------------
    def save(self, keep: set[str]) -> None:
        """Write back what changed, keeping only hashes still present in the source."""
        if self.client is None:
            return
        plans = {k: v for k, v in self.plans.items() if k in keep}
        if self._plans_dirty or len(plans) != len(self.plans):
            self._write(self.name, {"fingerprint": self.fingerprint, **_dedupe(plans)})
        if self._entries is not None:
            entries = {k: v for k, v in self._entries.items() if k in keep}
            if self._entries_dirty or len(entries) != len(self._entries):
                self._write(self.name + ".headers", {"entries": entries})

    def _write(self, name: str, body: dict[str, Any]) -> None:
        try:
            self.client.bucket(self.bucket).blob(name).upload_from_string(  # type: ignore[union-attr]
                json.dumps({"version": _VERSION, **body}, separators=(",", ":")),
                content_type="application/json",
            )
        except Exception:
            log.warning("could not save the header cache %s", name, exc_info=True)


def _dedupe(plans: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"plans": [distinct plans], "index": {md5: position}}``."""
    table: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    index: dict[str, int] = {}
    for md5, plan in plans.items():
        key = json.dumps(plan, sort_keys=True)
        if key not in seen:
            seen[key] = len(table)
            table.append(plan)
        index[md5] = seen[key]
    return {"plans": table, "index": index}
