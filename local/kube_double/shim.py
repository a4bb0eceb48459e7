"""``python shim.py DIR -- CMD...``: a container's monitor, apart from the double (as conmon is).

Runs CMD (the pod's first process: the command itself, or ``podman run``) in a session of its own, writes
its pid to ``DIR/pid``, its output to ``DIR/log`` with a timestamp per line (as a container runtime writes
a pod's log file), and its exit code to ``DIR/exit`` when it ends (128 + N for signal N). The shim is
started in a session of its own too and ignores TERM, INT and HUP: stopping or restarting the double
(the API server and its kubelet) leaves running pods running, as on a real node, and a kubelet started
again re-adopts them from these files.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path


def stamp() -> str:
    """RFC 3339 with nanoseconds, as container log timestamps are written."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees all of it or nothing.

    :param path: the file.
    :param text: its content.
    """
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def run(folder: Path, cmd: list[str]) -> int:
    """Run ``cmd`` as described in the module docstring; returns its exit code.

    :param folder: where ``pid``, ``log`` and ``exit`` go.
    :param cmd: the command and its arguments.
    """
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    # The child gets the default dispositions back (Popen restores SIGPIPE; TERM/INT/HUP by preexec).
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_default_signals,
    )
    write_atomically(folder / "pid", f"{proc.pid}\n")
    assert proc.stdout is not None
    with (folder / "log").open("ab", buffering=0) as out:
        for raw in proc.stdout:
            line = raw if raw.endswith(b"\n") else raw + b"\n"
            out.write(stamp().encode() + b" " + line)
    code = proc.wait()
    code = 128 - code if code < 0 else code
    write_atomically(folder / "exit", f"{code}\n")
    return code


def _default_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def main(argv: list[str]) -> int:
    """Entry point: ``DIR -- CMD...``.

    :param argv: the arguments after the program name.
    """
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python shim.py DIR -- CMD...", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    run(folder, argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
