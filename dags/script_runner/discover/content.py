"""Checks on a script's first bytes, before its header is parsed: what makes bash fail before the script
runs anything (empty, binary, Windows line endings) is rejected at discovery with the fix.
"""

from __future__ import annotations

from script_runner.config import constants as c
from script_runner.exceptions import DirectiveError

EMPTY = "empty script (0 bytes)"


def header_text(script: str, data: bytes, *, size: int | None = None) -> str:
    """The start of a script as text, once it passed the checks.

    CRLF is rejected rather than converted: the pod runs the exact object discovery pinned (generation and
    md5), so the fix belongs in the file.

    :param script: the script's path, for error messages.
    :param data: the first bytes of the script (the header read).
    :param size: the object's size when known (0 means empty: nothing is read then).
    :raises DirectiveError: empty, binary (a NUL byte) or CRLF line endings, with the line and the fix.
    """
    if size == 0 or not data:
        raise DirectiveError(
            script=script,
            line=None,
            message=EMPTY,
            fix="upload the script's content, or delete the empty object",
        )
    nul = data.find(b"\0")
    if nul >= 0:
        raise DirectiveError(
            script=script,
            line=data.count(b"\n", 0, nul) + 1,
            message=f"binary content (a NUL byte at byte {nul}): not a shell script",
            fix="upload the shell script itself, or keep this file out with exclude or .runnerignore",
        )
    crlf = data.find(b"\r\n")
    if crlf >= 0:
        raise DirectiveError(
            script=script,
            line=data.count(b"\n", 0, crlf) + 1,
            message="Windows line endings (CRLF): bash would read a stray \\r at the end of every line",
            fix="convert the file before uploading: dos2unix FILE (or sed -i 's/\\r$//' FILE)",
        )
    text = data.decode("utf-8", errors="replace")
    if size is not None and size > len(data):
        _refuse_cut_directive(script, text, limit=len(data))
    return text


def _refuse_cut_directive(script: str, text: str, *, limit: int) -> None:
    """Refuse a header whose last line read is a ``# runner:`` line cut by the header read's byte limit.

    Parsed as read, ``memory=1Gi`` cut to ``memory=1G`` would be taken at its cut value (or its last tokens
    dropped): the script is refused instead, with the fix.

    :param text: the bytes read, as text (the object is longer).
    :param limit: how many bytes were read.
    """
    if text.endswith("\n"):
        return  # the read ends at a line end: no line is cut
    lines = text.split("\n")
    number = len(lines)
    if number > c.HEADER_LINES or any(ln.strip() and not ln.strip().startswith("#") for ln in lines[:-1]):
        return  # the cut line is past the header (the header ended at a command, or the line limit)
    cut = lines[-1].strip()
    rest = cut.lstrip("#").strip().lower()
    maybe_directive = rest.startswith(c.DIRECTIVE_PREFIX) or c.DIRECTIVE_PREFIX.startswith(rest)
    if not cut.startswith("#") or not maybe_directive:
        return
    raise DirectiveError(
        script=script,
        line=number,
        message=f"this # {c.DIRECTIVE_PREFIX} line is cut by the header read at byte {limit} "
        "(max_header_bytes): it would be parsed truncated",
        fix=f"move the # {c.DIRECTIVE_PREFIX} lines to the top of the header (shorten the comments above "
        f"them), or raise max_header_bytes in the settings above {limit}",
    )
