"""The Airflow behind a double's Composer environment: its REST API (``airflowUri``) and CLI commands.

Composer serves each environment's Airflow web server at ``config.airflowUri`` behind a Google front that
accepts the caller's Google OAuth access token (``Authorization: Bearer``); Airflow itself never sees that
token. The double does the same: :class:`AirflowFront` checks the token, then either

- forwards the call to the local stack's Airflow with the credentials *that* Airflow accepts (Airflow 3's
  simple auth manager: a JWT from its ``/auth/token``; the local Airflow 2 webserver: none, every visitor
  is Admin). The local Airflow refuses a Google token sent to it directly, so the front is not optional;
- or answers from an in-memory Airflow that serves only what its version serves (``/api/v2`` on 3.x,
  ``/api/v1`` on 2.x): ``/version``, ``/providers`` and ``/variables/{key}`` (GET, PATCH, POST, DELETE).

:func:`run_command` is ``executeAirflowCommand``'s body: ``airflow variables get|set|delete`` in memory, or
the local Airflow's own CLI (``airflow_cli``) when the environment has one.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any

from aiohttp import ClientSession, web

if TYPE_CHECKING:
    from local.composer_envs import ComposerEnv

HOP_HEADERS = {"host", "authorization", "content-length", "transfer-encoding", "connection"}


class AirflowFront:
    """The ``/airflow/{env}/...`` routes: a Google-token check, then the environment's Airflow."""

    def __init__(self, envs: dict[str, ComposerEnv]) -> None:
        self.envs = envs
        self._tokens: dict[str, str] = {}

    async def handle(self, request: web.Request, env: ComposerEnv, tail: str) -> web.Response:
        """Answer one call below ``airflowUri`` (the token was checked by the caller)."""
        body = await request.read()
        if env.airflow_url:
            return await self._forward(request, env, tail, body)
        status, answer = in_memory(env, request.method, "/" + tail, json.loads(body) if body else None)
        return web.json_response(answer, status=status)

    async def _upstream_token(self, session: ClientSession, env: ComposerEnv) -> str | None:
        if env.airflow_version.startswith("2."):
            return None  # the local Airflow 2 webserver lets every visitor in as Admin
        if env.name not in self._tokens:
            async with session.get(f"{env.airflow_url}/auth/token") as resp:
                self._tokens[env.name] = str((await resp.json())["access_token"])
        return self._tokens[env.name]

    async def _forward(self, request: web.Request, env: ComposerEnv, tail: str, body: bytes) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with ClientSession() as session:
            token = await self._upstream_token(session, env)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            url = f"{env.airflow_url}/{tail}" + (f"?{request.query_string}" if request.query_string else "")
            async with session.request(request.method, url, data=body or None, headers=headers) as resp:
                data = await resp.read()
                return web.Response(
                    body=data, status=resp.status, content_type=resp.content_type or "application/json"
                )


def _api_prefix(env: ComposerEnv) -> str:
    return "/api/v1" if env.airflow_version.startswith("2.") else "/api/v2"


def in_memory(env: ComposerEnv, method: str, path: str, body: Any) -> tuple[int, Any]:
    """The in-memory Airflow's answer to one REST call.

    :param env: the environment (its version decides the API prefix; its ``variables`` are the store).
    :param method: HTTP method.
    :param path: the path below ``airflowUri``, e.g. ``/api/v2/variables/x``.
    :param body: the JSON body, or None.
    """
    prefix = _api_prefix(env)
    if not path.startswith(prefix + "/"):
        return 404, {"detail": "Not Found"}
    rest = path[len(prefix) :].split("?")[0]
    if rest == "/version" and method == "GET":
        return 200, {"version": env.airflow_version, "git_version": None}
    if rest == "/providers" and method == "GET":
        providers = [
            {"package_name": f"apache-airflow-providers-{k}", "version": v, "description": ""}
            for k, v in sorted(env.providers.items())
        ]
        return 200, {"providers": providers, "total_entries": len(providers)}
    if rest == "/variables" and method == "POST":
        key = str(body["key"])
        if key in env.variables:
            return 409, {"detail": f"The Variable with key: `{key}` already exists"}
        env.variables[key] = str(body["value"])
        return 201, {"key": key, "value": env.variables[key]}
    if rest.startswith("/variables/"):
        key = rest.removeprefix("/variables/")
        if key not in env.variables:
            return 404, {"detail": f"The Variable with key: `{key}` was not found"}
        if method == "GET":
            return 200, {"key": key, "value": env.variables[key]}
        if method == "PATCH":
            env.variables[key] = str(body["value"])
            return 200, {"key": key, "value": env.variables[key]}
        if method == "DELETE":
            del env.variables[key]
            return 204, None
    return 405 if rest.startswith("/variables") else 404, {"detail": "Not emulated"}


async def run_command(
    env: ComposerEnv, command: str, subcommand: str, parameters: list[str]
) -> tuple[int, list[str], str]:
    """Run ``airflow COMMAND SUBCOMMAND PARAMETERS...`` for the environment.

    :returns: exit code, output lines (stdout and stderr as one stream, like Composer), error message.
    """
    argv = [command, *([subcommand] if subcommand else []), *parameters]
    if env.airflow_cli:
        proc = await asyncio.create_subprocess_exec(
            *env.airflow_cli,
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,  # one stream, in the order written (as Composer returns it)
            env=dict(os.environ),
        )
        out, _ = await proc.communicate()
        lines = out.decode(errors="replace").splitlines()
        code = proc.returncode or 0
        return code, lines, "" if code == 0 else f"airflow exited with {code}"
    return _variables_in_memory(env, argv)


def _variables_in_memory(env: ComposerEnv, argv: list[str]) -> tuple[int, list[str], str]:
    args = [a for a in argv if a != "--"]
    if args[:2] == ["variables", "get"] and len(args) == 3:
        if args[2] not in env.variables:
            return 1, [f"Variable {args[2]} does not exist"], "Variable does not exist"
        return 0, env.variables[args[2]].splitlines() or [""], ""
    if args[:2] == ["variables", "set"] and len(args) == 4:
        env.variables[args[2]] = args[3]
        return 0, [f"Variable {args[2]} created"], ""
    if args[:2] == ["variables", "delete"] and len(args) == 3:
        env.variables.pop(args[2], None)
        return 0, [f"Variable {args[2]} deleted"], ""
    return 2, [f"the in-memory Airflow runs no `airflow {' '.join(argv)}`"], "not emulated"
