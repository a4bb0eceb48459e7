"""Where ``script-runner deploy`` reads versions and keeps the settings Variable: gcloud or the REST API.

``Gcloud`` drives ``gcloud composer environments describe|run`` (a Composer environment); ``AirflowRest``
talks to an Airflow's public REST API (``/api/v2`` on Airflow 3, ``/api/v1`` on 2), which is how the local
stack is deployed to and tested.
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import urllib.error
import urllib.request
from typing import Any, Protocol

from script_runner.deploy.versions import PROVIDERS, Versions
from script_runner.exceptions import DeployError

GCLOUD_TIMEOUT = 600  # seconds; `environments run` starts a pod in the environment and can take minutes


class VariableStore(Protocol):
    """Reads and writes one Airflow Variable; ``commands`` says how, for ``--dry-run``."""

    def get_variable(self, key: str) -> str | None:
        """The Variable's value, or None when it does not exist."""

    def set_variable(self, key: str, value: str) -> None:
        """Create or replace the Variable."""

    def commands(self, key: str, value: str) -> list[str]:
        """What ``get_variable`` then ``set_variable`` do, as printable lines."""


class Gcloud:
    """``gcloud composer environments`` for one environment.

    :param environment: the Composer environment's name.
    :param location: its region.
    :param binary: the gcloud executable.
    :param project: the environment's project; None: gcloud's default project (``core/project``).
    """

    def __init__(
        self, *, environment: str, location: str, binary: str = "gcloud", project: str | None = None
    ) -> None:
        self.environment = environment
        self.location = location
        self.binary = binary
        self.project = project
        self._token: str | None = None

    def _project(self) -> list[str]:
        return ["--project", self.project] if self.project else []

    def _base(self, verb: str) -> list[str]:
        return [
            self.binary,
            "composer",
            "environments",
            verb,
            self.environment,
            "--location",
            self.location,
            *self._project(),
        ]

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=GCLOUD_TIMEOUT, check=False)
        except FileNotFoundError as exc:
            raise DeployError(
                f"{self.binary} not found: install the Google Cloud CLI or pass --gcloud"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise DeployError(f"{shlex.join(argv)} did not finish in {GCLOUD_TIMEOUT}s") from exc

    def describe(self) -> dict[str, Any]:
        """The environment as ``describe --format=json`` shows it."""
        argv = [*self._base("describe"), "--format=json"]
        done = self._run(argv)
        if done.returncode != 0:
            raise DeployError(f"{shlex.join(argv)} failed: {done.stderr.strip()[-500:]}")
        try:
            return dict(json.loads(done.stdout))
        except ValueError as exc:
            raise DeployError(f"{shlex.join(argv)} printed no JSON") from exc

    def access_token(self) -> str:
        """The logged-in user's access token (``gcloud auth print-access-token``): one login is enough.

        Asked once per deploy (the REST API and the bucket share it).

        :raises DeployError: not logged in, naming the command that fixes it.
        """
        if self._token is None:
            self._token = print_access_token(self.binary)
        return self._token

    def _variables(self, *args: str) -> list[str]:
        return [*self._base("run"), "variables", "--", *args]

    def get_variable(self, key: str) -> str | None:
        """The Variable's value (``variables get``), or None when it does not exist."""
        done = self._run(self._variables("get", "--", key))
        if done.returncode != 0:
            if "does not exist" in done.stdout + done.stderr:
                return None
            raise DeployError(f"reading the Variable {key} failed: {done.stderr.strip()[-500:]}")
        return _value_from_output(done.stdout)

    def set_variable(self, key: str, value: str) -> None:
        """``variables set`` the Variable."""
        argv = self._variables("set", "--", key, value)
        done = self._run(argv)
        if done.returncode != 0:
            raise DeployError(f"setting the Variable {key} failed: {done.stderr.strip()[-500:]}")

    def commands(self, key: str, value: str) -> list[str]:
        """The get and set commands, shell-quoted."""
        return [
            shlex.join(self._variables("get", "--", key)),
            shlex.join(self._variables("set", "--", key, value)),
        ]


def print_access_token(binary: str = "gcloud") -> str:
    """``gcloud auth print-access-token``: the token of gcloud's active account (never logged).

    :param binary: the gcloud executable.
    :raises DeployError: gcloud missing or not logged in, naming ``gcloud auth login``.
    """
    argv = [binary, "auth", "print-access-token"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        raise DeployError(
            f"cannot get an access token from {binary} ({type(exc).__name__}): install the Google Cloud CLI "
            "and run `gcloud auth login`, or pass --gcloud"
        ) from exc
    token = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not token:
        raise DeployError(
            f"`{shlex.join(argv)}` gave no token ({done.stderr.strip()[-300:]}): run `gcloud auth login`"
        )
    return token


def _value_from_output(stdout: str) -> str:
    """The Variable's value in ``variables get`` output: Composer returns the command's stdout and stderr as
    one stream, so gcloud's lines and Airflow 2's warnings may come before or after the JSON value."""
    lines = stdout.strip().splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("{"):
            rest = "\n".join(lines[i:]).strip()
            try:
                _, end = json.JSONDecoder().raw_decode(rest)
            except ValueError:
                return rest  # not JSON after all: the caller names the Variable and the fix
            return rest[:end]
    return lines[-1].strip() if lines else ""


class AirflowRest:
    """An Airflow's public REST API: ``/api/v2`` (Airflow 3) or ``/api/v1`` (Airflow 2).

    :param base_url: e.g. ``http://127.0.0.1:8080``.
    :param token: a bearer token; None asks ``/auth/token`` (Airflow 3's simple auth manager) for one.
    :param basic_auth: ``user:password`` for Airflow 2's basic-auth backend.
    :param api: ``/api/v2`` or ``/api/v1`` when known (a Composer environment's image says which); None:
        asked from the server.
    :param token_source: how the token was obtained, for ``--dry-run``'s lines (never the token itself).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        basic_auth: str | None = None,
        api: str | None = None,
        token_source: str | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self._token = token
        self._basic = basic_auth
        self._api: str | None = api
        self._token_source = token_source

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._basic:
            headers["Authorization"] = "Basic " + base64.b64encode(self._basic.encode()).decode()
        elif self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers=self._headers())
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")[:300]
        except OSError as exc:
            raise DeployError(f"cannot reach Airflow at {self.base}: {exc}") from exc

    def api(self) -> str:
        """``/api/v2`` or ``/api/v1``, whichever this Airflow serves."""
        if self._api is None:
            if self._token is None and self._basic is None:
                status, body = self._call("GET", "/auth/token")
                if status == 200 and isinstance(body, dict) and body.get("access_token"):
                    self._token = str(body["access_token"])
            for api in ("/api/v2", "/api/v1"):
                status, _ = self._call("GET", f"{api}/version")
                if status == 200:
                    self._api = api
                    break
                if status in (401, 403):
                    raise DeployError(
                        f"Airflow at {self.base} refused {api}/version ({status}): pass a token "
                        "(--airflow-token) or user:password (--airflow-auth)"
                    )
            else:
                raise DeployError(f"no Airflow REST API (/api/v2 or /api/v1) at {self.base}")
        return self._api

    def _ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self._call(method, f"{self.api()}{path}", body)
        if status >= 300:
            raise DeployError(f"{method} {self.api()}{path}: {status} {answer}")
        return answer

    def versions(self) -> Versions:
        """Airflow's version and its installed providers, as the REST API reports them."""
        airflow = str(self._ok("GET", "/version")["version"])
        providers: dict[str, str | None] = {}
        for entry in self._ok("GET", "/providers?limit=500").get("providers", []):
            name = str(entry.get("package_name", "")).removeprefix("apache-airflow-providers-")
            if name in PROVIDERS:
                providers[name] = str(entry.get("version"))
        for name in PROVIDERS:
            if name not in providers:
                raise DeployError(f"Airflow at {self.base} has no apache-airflow-providers-{name} installed")
        return Versions(airflow=airflow, providers=providers, source=f"{self.base}{self.api()}")

    def get_variable(self, key: str) -> str | None:
        """The Variable's value, or None (404)."""
        status, body = self._call("GET", f"{self.api()}/variables/{key}")
        if status == 404:
            return None
        if status in (401, 403):
            raise DeployError(self._refused(status, body))
        if status >= 300:
            raise DeployError(f"reading the Variable {key}: {status} {body}")
        return str(body["value"])

    def _refused(self, status: int, body: Any) -> str:
        who = self._token_source or "the given credentials"
        return (
            f"the Airflow at {self.base} refused {who} ({status} {str(body)[:200]}): your account needs "
            "access to the environment's Airflow (roles/composer.user and an Airflow role with Variable "
            "edit rights, e.g. Op); check `gcloud auth list` and run `gcloud auth login`"
        )

    def set_variable(self, key: str, value: str) -> None:
        """Update the Variable, or create it when it does not exist."""
        status, body = self._call("PATCH", f"{self.api()}/variables/{key}", {"key": key, "value": value})
        if status == 404:
            self._ok("POST", "/variables", {"key": key, "value": value})
        elif status >= 300:
            raise DeployError(f"setting the Variable {key}: {status} {body}")

    def commands(self, key: str, value: str) -> list[str]:
        """The REST calls, as printable lines."""
        api = f"{self.base}{self.api()}"
        auth = f" (Authorization: Bearer <{self._token_source}>)" if self._token_source else ""
        return [
            f"GET {api}/variables/{key}{auth}",
            f"PATCH {api}/variables/{key} {json.dumps({'key': key, 'value': value})}{auth}",
            f"  (POST {api}/variables when it does not exist yet)",
        ]
