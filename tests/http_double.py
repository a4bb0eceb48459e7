"""A local HTTP double served from a thread: the start and stop the test API doubles share."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ServedDouble:
    """Serves ``handler`` on a free port of 127.0.0.1 (``url``) until :meth:`stop`."""

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        """Start serving ``handler`` in a daemon thread; ``self.url`` is its base URL."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
