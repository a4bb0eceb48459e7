"""Header cache: by content md5, a script's directive lines, so a run downloads only new or changed
scripts' headers.

Safe to reuse because the key is the object's content hash: the same md5 means the same header. Only
*input* is cached, never a decision: every run parses and authorizes each header against the current
settings (allowlists, caps, reserved names, faults), so nothing read back from storage can grant a script
an image, an identity or an environment. The cache object lives under ``<state_root>/cache/``, which only
the Airflow identity may write (docs/operator-guide.md, "Security"); even so, a forged entry could at most
give a script other directives that the settings allow.

One object, ``<name>``: ``{"version": 6, "entries": {md5: directive text}}``. A lost, old or corrupt cache
only costs reading the headers again.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from script_runner.discover.directives import header_lines, is_directive_line, late_directives

if TYPE_CHECKING:
    from google.cloud.storage import Client

log = logging.getLogger(__name__)
# 5: directive lines only, no plans (4 stored resolved plans, which were trusted when read back: gone).
# 6: also the directive lines after the first command (an error), behind a ":" at the first command's line.
_VERSION = 6


def directive_text(header: str) -> str:
    """The ``# runner:`` lines of a header's comment block, other lines blanked (line numbers are kept for
    error messages). Scripts whose directives are the same share one text, so discovery resolves each
    distinct text once per run. ``# runner:`` lines after the first command are kept too, behind a ``:`` at
    the first command's line, so that parsing the text finds them late, as in the script.
    """
    lines = [line if is_directive_line(line) else "" for _, line in header_lines(header)]
    late = late_directives(header)
    if late:
        lines.append(":")
        for number, line in late:
            lines.extend([""] * (number - 1 - len(lines)))
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


class HeaderCache:
    """md5 → directive text, loaded once and saved once per discovery."""

    def __init__(
        self, client: Client | None = None, *, bucket: str = "", name: str = "", fingerprint: str = ""
    ) -> None:
        """:param client: storage client (None: an in-memory cache for this run only).
        :param bucket: the state bucket.
        :param name: the cache object, ``<state_root>/cache/headers.json``.
        :param fingerprint: ignored; kept so older callers work (plans, which depended on the settings,
            are no longer cached).
        """
        del fingerprint
        self.client, self.bucket, self.name = client, bucket, name
        self.entries: dict[str, str] = {}
        self.hits = 0
        self._dirty = False
        self._loaded = False

    def ensure_loaded(self) -> HeaderCache:
        """Load once (discovery calls this while it lists the source)."""
        return self if self._loaded else self.load()

    def load(self) -> HeaderCache:
        """Read the cache object; any problem leaves it empty."""
        self._loaded = True
        entries = self._read().get("entries")
        if isinstance(entries, dict):
            self.entries = {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, str)}
        return self

    def _read(self) -> dict[str, Any]:
        if self.client is None:
            return {}
        try:
            data = json.loads(self.client.bucket(self.bucket).blob(self.name).download_as_bytes())
        except Exception:  # absent on the first run, or unreadable: start empty
            log.info("header cache %s not loaded", self.name)
            return {}
        return data if isinstance(data, dict) and data.get("version") == _VERSION else {}

    def get(self, md5: str) -> str | None:
        """Cached directive text for a content hash."""
        text = self.entries.get(md5) if md5 else None
        if text is not None:
            self.hits += 1
        return text

    def put(self, md5: str, text: str) -> None:
        """Remember a script's directive text (only for scripts that passed the content checks)."""
        if md5 and self.entries.get(md5) != text:
            self.entries[md5] = text
            self._dirty = True

    def save(self, keep: set[str]) -> None:
        """Write back when something changed, keeping only hashes still present in the source."""
        if self.client is None:
            return
        entries = {k: v for k, v in self.entries.items() if k in keep}
        if not self._dirty and len(entries) == len(self.entries):
            return
        try:
            self.client.bucket(self.bucket).blob(self.name).upload_from_string(
                json.dumps({"version": _VERSION, "entries": entries}, separators=(",", ":")),
                content_type="application/json",
            )
        except Exception:
            log.warning("could not save the header cache %s", self.name, exc_info=True)
