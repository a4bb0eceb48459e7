"""Checks on a script's first bytes, before its header is parsed: what makes bash fail before the script
runs anything (empty, binary, Windows line endings) is rejected at discovery with the fix.
"""

from __future__ import annotations

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
    return data.decode("utf-8", errors="replace")
