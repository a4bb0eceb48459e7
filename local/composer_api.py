"""A local Composer API double: what the real gcloud and ``script-runner deploy`` call on Cloud Composer.

Serves, for the environments of a catalogue file (``local/composer_envs.py``):

``GET /v1/projects/P/locations/L/environments/E``
    ``environments.get`` (``gcloud composer environments describe``): state, image version,
    ``dagGcsPrefix`` (a bucket on the GCS emulator), ``airflowUri`` (this server's Airflow front).
``POST /v1/.../environments/E:executeAirflowCommand`` and ``...:pollAirflowCommand``
    what ``gcloud composer environments run`` uses on Composer >= 2.4 (every image here): the command runs
    at once (in memory, or the local Airflow's CLI) and the first poll returns all its output.
``* /airflow/E/...``
    the environment's Airflow web server (``local/composer_airflow.py``).

Every call needs ``Authorization: Bearer <token>`` with the catalogue's token (what gcloud sends from
``CLOUDSDK_AUTH_ACCESS_TOKEN_FILE``, and what ``gcloud auth print-access-token`` prints); anything else is
answered 401 in the Google API error shape. gcloud's own checks (state RUNNING, the Airflow version range of
each ``run`` subcommand) happen in gcloud, before it calls here: that is what the double lets tests see.

``python -m local.composer_api --port 4800 --catalogue envs.json``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import re
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from local.composer_airflow import AirflowFront, run_command
from local.composer_envs import Catalogue, ComposerEnv

log = logging.getLogger("composer_api")
_ENV = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/environments/([^/:]+)(?::([A-Za-z]+))?$")
_FRONT = re.compile(r"^/airflow/([^/]+)/(.*)$")


def google_error(code: int, status: str, message: str) -> web.Response:
    """An error in the shape Google APIs answer (gcloud prints ``message``)."""
    return web.json_response({"error": {"code": code, "message": message, "status": status}}, status=code)


class ComposerApi:
    """The routes above over one catalogue; executions are kept for their polls."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.front = AirflowFront(catalogue.environments)
        self.executions: dict[str, tuple[int, list[str], str]] = {}
        self.calls: list[str] = []
        self._ids = itertools.count(1)

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Check the token, then route by path."""
        self.calls.append(f"{request.method} {request.path}")
        if request.path == "/healthz":
            return web.json_response({"ok": True})
        if request.headers.get("Authorization") != f"Bearer {self.catalogue.token}":
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        front = _FRONT.match(request.path)
        if front:
            env = self.catalogue.environments.get(front.group(1))
            if env is None:
                return web.json_response({"detail": "Not Found"}, status=404)
            return await self.front.handle(request, env, front.group(2))
        match = _ENV.match(request.path)
        if not match:
            return google_error(404, "NOT_FOUND", f"no route {request.method} {request.path}")
        project, location, name, verb = match.groups()
        env = self.catalogue.environments.get(name)
        if env is None or (project, location) != (self.catalogue.project, self.catalogue.location):
            return google_error(
                404,
                "NOT_FOUND",
                f"Environment projects/{project}/locations/{location}/environments/{name} not found.",
            )
        if verb is None and request.method == "GET":
            base = f"{request.scheme}://{request.host}"
            return web.json_response(env.describe(project, location, base))
        body: dict[str, Any] = await request.json() if request.can_read_body else {}
        if verb == "executeAirflowCommand" and request.method == "POST":
            return await self._execute(env, body)
        if verb == "pollAirflowCommand" and request.method == "POST":
            return self._poll(body)
        return google_error(400, "INVALID_ARGUMENT", f"{verb or request.method} is not emulated")

    async def _execute(self, env: ComposerEnv, body: dict[str, Any]) -> web.Response:
        if env.state != "RUNNING":
            return google_error(400, "FAILED_PRECONDITION", "The environment is not RUNNING.")
        execution = f"exec-{next(self._ids)}"
        params = [str(p) for p in body.get("parameters") or []]
        self.executions[execution] = await run_command(
            env, str(body.get("command", "")), str(body.get("subcommand") or ""), params
        )
        log.info("%s: airflow %s %s %s", env.name, body.get("command"), body.get("subcommand"), params)
        return web.json_response(
            {"executionId": execution, "pod": "airflow-worker-x", "podNamespace": "composer-user-workloads"}
        )

    def _poll(self, body: dict[str, Any]) -> web.Response:
        found = self.executions.get(str(body.get("executionId")))
        if found is None:
            return google_error(404, "NOT_FOUND", "execution not found")
        code, lines, error = found
        start = int(body.get("nextLineNumber") or 1)
        output = [{"lineNumber": i, "content": line} for i, line in enumerate(lines, 1) if i >= start]
        answer: dict[str, Any] = {"output": output, "outputEnd": True, "exitInfo": {"exitCode": code}}
        if error:
            answer["exitInfo"]["error"] = error
        return web.json_response(answer)


async def serve(catalogue: Catalogue, port: int, host: str = "127.0.0.1") -> None:
    """Serve until SIGTERM/SIGINT."""
    runner = web.AppRunner(ComposerApi(catalogue).app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("Composer API double on http://%s:%d (%d environments)", host, port, len(catalogue.environments))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.composer_api", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--catalogue", type=Path, required=True, help="environments JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(Catalogue.load(args.catalogue), args.port))


if __name__ == "__main__":
    main()
