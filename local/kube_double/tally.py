"""How many API requests the double served, by method and route, with the bytes of their answers.

What a benchmark reads to compare the API calls a task makes (ours against the bare KubernetesPodOperator):
``GET /_double/requests`` answers ``{"<METHOD> <route>": {"count": n, "bytes": b}}``, the route as it is
registered (``/api/v1/namespaces/{ns}/pods/{name}``), so the figures group by kind of call, not by pod;
``DELETE /_double/requests`` starts the count again. The double's own ``/_double/`` controls are not counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

COUNTS: web.AppKey[Counter[str]] = web.AppKey("tally_counts", Counter)
BYTES: web.AppKey[Counter[str]] = web.AppKey("tally_bytes", Counter)


def install(app: web.Application) -> None:
    """Give ``app`` its (empty) tally; the middleware and the routes below use it."""
    app[COUNTS], app[BYTES] = Counter(), Counter()


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    canonical = info.canonical if info is not None else request.path
    return f"{request.method} {canonical}"


@web.middleware
async def tally_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Count the request under its route, and the length of a body it answered with."""
    response: web.StreamResponse = await handler(request)
    if not request.path.startswith("/_double/"):
        key = _route(request)
        request.app[COUNTS][key] += 1
        length = response.body_length if response.prepared else getattr(response, "content_length", None)
        request.app[BYTES][key] += int(length or 0)
    return response


async def read(request: web.Request) -> web.Response:
    """``GET``: the counts so far; ``DELETE``: the counts so far, then zero."""
    counts, sizes = request.app[COUNTS], request.app[BYTES]
    answer = {key: {"count": counts[key], "bytes": sizes[key]} for key in sorted(counts)}
    if request.method == "DELETE":
        counts.clear()
        sizes.clear()
    return web.json_response(answer)


def routes() -> list[web.RouteDef]:
    """The tally's admin routes."""
    return [web.get("/_double/requests", read), web.delete("/_double/requests", read)]
