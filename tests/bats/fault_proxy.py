"""A GCS front for the bats tests: answers the first N requests with an error status, forwards the rest.

Usage: python fault_proxy.py PORT UPSTREAM FAILS STATUS LOG [METHOD] [after]
FAILS -1 fails every request. METHOD (default "*") limits the failures to one HTTP method. With "after" the
request is forwarded first and only its reply is replaced (a reply lost after the write took effect).
Each request is appended to LOG as "METHOD PATH -> STATUS". Stdlib only.
"""

from __future__ import annotations

import http.server
import sys
import threading
import urllib.error
import urllib.request

_LOCK = threading.Lock()


class _Handler(http.server.BaseHTTPRequestHandler):
    upstream = ""
    fails = 0
    status = 503
    log_path = ""
    method = "*"
    after = False

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        with _LOCK:
            failing = _Handler.fails != 0 and _Handler.method in ("*", self.command)
            if failing and _Handler.fails > 0:
                _Handler.fails -= 1
        if not failing or _Handler.after:
            code, data, ctype = self._forward(body)
        if failing:
            code, data, ctype = (
                _Handler.status,
                b'{"error": {"code": %d}}' % _Handler.status,
                "application/json",
            )
        with _LOCK, open(_Handler.log_path, "a", encoding="utf-8") as log:
            log.write(f"{self.command} {self.path} -> {code}\n")
        self.send_response(code)
        self.send_header("Content-Type", ctype or "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _forward(self, body: bytes | None) -> tuple[int, bytes, str]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        req = urllib.request.Request(
            _Handler.upstream + self.path, data=body, method=self.command, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers.get("Content-Type", "")

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the LOG file records requests."""


def main() -> None:
    """Serve until killed."""
    port, upstream, fails, status, log_path = sys.argv[1:6]
    _Handler.upstream, _Handler.fails, _Handler.status = upstream, int(fails), int(status)
    _Handler.log_path = log_path
    _Handler.method = sys.argv[6] if len(sys.argv) > 6 else "*"
    _Handler.after = len(sys.argv) > 7 and sys.argv[7] == "after"
    http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), _Handler).serve_forever()


if __name__ == "__main__":
    main()
