"""A bucket IAM policy endpoint for the real gcloud: ``getIamPolicy`` and ``setIamPolicy`` of GCS's JSON API.

``gcloud storage buckets add-iam-policy-binding`` reads the policy (``GET /storage/v1/b/B/iam``), adds the
binding itself (gcloud's own rules apply: e.g. an unconditional binding on a policy with conditions is refused
without a prompt) and writes it back (``PUT``); :class:`BucketIam` keeps the policies in memory and answers
with an etag, as GCS does. Point gcloud at it with ``CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE``.
"""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.http_double import ServedDouble


class BucketIam(ServedDouble):
    """In-memory bucket policies served over HTTP on 127.0.0.1 (a free port) until :meth:`stop`."""

    def __init__(self, policies: dict[str, dict[str, Any]]) -> None:
        self.policies = policies
        self.calls: list[tuple[str, str]] = []
        self.generation = 1
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _bucket(self) -> str | None:
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) == 5 and parts[:3] == ["storage", "v1", "b"] and parts[4] == "iam":
                    return parts[3]
                return None

            def _answer(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                double.calls.append(("GET", self.path))
                bucket = self._bucket()
                if bucket is None or bucket not in double.policies:
                    self._answer(
                        404, {"error": {"code": 404, "message": "The specified bucket does not exist."}}
                    )
                    return
                self._answer(
                    200,
                    {
                        "kind": "storage#policy",
                        "resourceId": f"projects/_/buckets/{bucket}",
                        **double.policies[bucket],
                    },
                )

            def do_PUT(self) -> None:
                double.calls.append(("PUT", self.path))
                bucket = self._bucket()
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if bucket is None or bucket not in double.policies:
                    self._answer(
                        404, {"error": {"code": 404, "message": "The specified bucket does not exist."}}
                    )
                    return
                double.generation += 1
                etag = base64.b64encode(double.generation.to_bytes(4, "big")).decode()
                policy = {k: v for k, v in body.items() if k in ("bindings", "version")}
                double.policies[bucket] = {**policy, "etag": etag}
                self._answer(200, {"kind": "storage#policy", **double.policies[bucket]})

        self.serve(Handler)
