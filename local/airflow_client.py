"""A small client for Airflow's public REST API on the local stack (what the demo and e2e tests use).

Airflow 3 serves ``/api/v2`` (a token from the simple auth manager); Airflow 2 serves ``/api/v1`` on its
webserver, where the local stack makes every visitor Admin (no credentials). The client finds out which one
it talks to on its first call; the methods return the same shapes for both.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

TERMINAL = {"success", "failed"}
FINISHED_TASK = {"success", "failed", "skipped", "upstream_failed", "removed"}


class AirflowClient:
    """Talks to ``/api/v2`` (Airflow 3, a simple-auth-manager token) or ``/api/v1`` (Airflow 2, open)."""

    def __init__(self, base_url: str, *, api_version: int | None = None) -> None:
        """:param base_url: the api-server (3.x) or webserver (2.x) URL.
        :param api_version: 1 or 2; found out from the server on first use when not given."""
        self.base = base_url.rstrip("/")
        self._token: str | None = None
        self._api_version = api_version

    @property
    def api_version(self) -> int:
        """1 (Airflow 2's webserver) or 2 (Airflow 3's api-server): whichever answers its health endpoint."""
        if self._api_version is None:
            try:
                with urllib.request.urlopen(f"{self.base}/api/v1/health", timeout=30) as resp:
                    self._api_version = 1 if resp.status == 200 else 2
            except (urllib.error.URLError, OSError):
                self._api_version = 2
        return self._api_version

    @property
    def api(self) -> str:
        """The API prefix, ``/api/v1`` or ``/api/v2``."""
        return f"/api/v{self.api_version}"

    def _auth_headers(self) -> dict[str, str]:
        if self.api_version == 1:
            return {}  # the local Airflow 2 webserver lets every visitor in as Admin
        if self._token is None:
            with urllib.request.urlopen(f"{self.base}/auth/token", timeout=30) as resp:
                self._token = json.loads(resp.read())["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, body: Any = None, *, accept: str = "application/json") -> Any:
        """One call; ``path`` may start with ``/api/v2``, which is rewritten to this server's prefix.

        :param method: HTTP method.
        :param path: path and query below the base URL.
        :param body: JSON body (or None).
        :param accept: ``application/json`` (parsed) or another type (text returned).
        """
        if path.startswith("/api/v2/"):
            path = self.api + path[len("/api/v2") :]
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.base}{path}",
            data=data,
            method=method,
            # no Content-Type without a body: Airflow 2 answers a bodiless DELETE declared as JSON with 400
            headers={
                **self._auth_headers(),
                **({"Content-Type": "application/json"} if data is not None else {}),
                "Accept": accept,
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(
                f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')[:500]}"
            ) from exc
        if accept != "application/json":
            return raw.decode(errors="replace")
        return json.loads(raw) if raw else None

    # -- DAGs and runs --------------------------------------------------------------------------------
    def dag(self, dag_id: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"/api/v2/dags/{dag_id}")  # type: ignore[no-any-return]
        except RuntimeError:
            return None

    def wait_dag_parsed(self, dag_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.dag(dag_id) is None:
            errors = self.import_errors()
            if errors:
                raise RuntimeError(f"DAG {dag_id} does not import: {errors}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"DAG {dag_id} not parsed after {timeout:.0f}s (see the dag-processor log)"
                )
            time.sleep(1)

    def import_errors(self) -> list[str]:
        """Import errors the dag-processor recorded (file and the last line of the error)."""
        body = self.request("GET", "/api/v2/importErrors")
        return [
            f"{e.get('filename')}: {str(e.get('stack_trace', '')).strip().splitlines()[-1:]}"
            for e in (body or {}).get("import_errors", [])
        ]

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger_dag(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        # 3.x needs logical_date (None: a run without one); 2.x takes the current time when it is left out.
        body: dict[str, Any] = {"conf": conf or {}}
        if self.api_version >= 2:
            body["logical_date"] = None
        run = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        return str(run["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}")  # type: ignore[no-any-return]

    def wait_dag_run(
        self, dag_id: str, run_id: str, timeout: float = 600, *, end_if_stuck: bool = True
    ) -> str:
        """Wait for a run to end; its final state.

        :param timeout: seconds; then TimeoutError, naming the run's unfinished tasks.
        :param end_if_stuck: at the timeout, also mark the run failed as a user would. Every DAG here has
            ``max_active_runs=1``: a run left running keeps each later run queued, and one stuck run then
            fails everything after it with timeouts that hide where it stuck (seen on CI).
        """
        deadline = time.monotonic() + timeout
        while True:
            state = str(self.dag_run(dag_id, run_id)["state"])
            if state in TERMINAL:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"run {run_id} still {state} after {timeout:.0f}s; unfinished tasks: "
                    f"{self._unfinished(dag_id, run_id)}"
                    + (self._end_stuck(dag_id, run_id) if end_if_stuck else "")
                )
            time.sleep(1)

    def _unfinished(self, dag_id: str, run_id: str) -> str:
        try:
            tis = self.task_instances(dag_id, run_id)
        except (RuntimeError, OSError) as exc:
            return f"unknown ({exc})"
        return (
            ", ".join(
                f"{ti['task_id']}[{ti.get('map_index', -1)}]={ti.get('state')}"
                for ti in tis
                if ti.get("state") not in FINISHED_TASK
            )
            or "none"
        )

    def _end_stuck(self, dag_id: str, run_id: str) -> str:
        try:
            self.set_dag_run_state(dag_id, run_id, "failed")
            self.wait_dag_run(dag_id, run_id, timeout=120, end_if_stuck=False)
        except (RuntimeError, OSError, TimeoutError) as exc:
            return f"; could not mark it failed: {exc}"
        return "; marked failed so that later runs are not queued behind it"

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.request(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances"
                f"?limit=100&offset={offset}",
            )
            out += page["task_instances"]
            offset += len(page["task_instances"])
            if not page["task_instances"] or offset >= page["total_entries"]:
                return out

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}/logs/"
            f"{try_number}?map_index={map_index}&full_content=true"
        )
        if self.api_version == 1:
            # 2.x's JSON answer is the repr of a list of (host, text) tuples: ask for the plain text
            return str(self.request("GET", path, accept="text/plain"))
        body = self.request("GET", path)
        content = body.get("content", "") if isinstance(body, dict) else body
        if isinstance(content, list):
            return "\n".join(_log_line(c) for c in content)
        return str(content)

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any]:
        """One task instance as the REST API shows it (state, try_number, pid, hostname, ...)."""
        return self.request(  # type: ignore[no-any-return]
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}/{map_index}",
        )

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, map_index: int, state: str) -> None:
        """Mark a task instance ``failed`` or ``success`` as a user does in the UI."""
        self.user_change(
            "PATCH",
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}/{map_index}",
            {"new_state": state} if self.api_version >= 2 else {"new_state": state, "dry_run": False},
        )

    def set_dag_run_state(self, dag_id: str, run_id: str, state: str) -> None:
        """Mark a whole DAG run ``failed``, ``success`` or ``queued`` as a user does in the UI."""
        self.user_change(
            "PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}", {"state": state}
        )

    def user_change(self, method: str, path: str, body: Any, *, attempts: int = 3, pause: float = 1.0) -> Any:
        """A state change a user makes, tried again after a 500 as a user clicks again.

        Marking a run failed updates its unfinished task instances while the scheduler may be updating
        some of the same rows (e.g. skipping the run's empty shards) in another order: PostgreSQL then
        breaks the deadlock by failing one side, and Airflow answers 500 (seen in a fresh ``make test``:
        "deadlock detected" between the API's and the scheduler's ``UPDATE task_instance``). The change is
        idempotent, so trying it again is what the UI's user does.

        :param attempts: tries in all; the last error is raised.
        :param pause: seconds between tries.
        """
        for attempt in range(1, attempts + 1):
            try:
                return self.request(method, path, body)
            except RuntimeError as exc:
                if ": 500 " not in str(exc) or attempt == attempts:
                    raise
                time.sleep(pause)
        return None

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom value as JSON (None when there is none yet)."""
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}/"
            f"xcomEntries/{key}?deserialize=true&stringify=false"
        )
        try:
            body = self.request("GET", path)
        except RuntimeError as exc:
            if ": 404 " in str(exc):
                return None
            raise
        return (body or {}).get("value")

    def backfill(self, dag_id: str, from_date: str, to_date: str, *, max_active_runs: int = 1) -> list[str]:
        """Airflow 3's backfill of a scheduled DAG (real ``backfill`` runs, one per interval); their run ids.

        :param from_date: the first logical date (ISO 8601), included.
        :param to_date: the last logical date, included.
        :param max_active_runs: how many of its runs may run at once.
        """
        body = {
            "dag_id": dag_id,
            "from_date": from_date,
            "to_date": to_date,
            "max_active_runs": max_active_runs,
            "reprocess_behavior": "none",
            "run_backwards": False,
            "dag_run_conf": {},
        }
        self.request("POST", "/api/v2/backfills", body)
        query = urllib.parse.urlencode(
            {"run_type": "backfill", "logical_date_gte": from_date, "logical_date_lte": to_date, "limit": 100}
        )
        runs = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")
        return [str(r["dag_run_id"]) for r in sorted(runs["dag_runs"], key=lambda r: str(r["logical_date"]))]

    def clear_dag_run(self, dag_id: str, run_id: str) -> None:
        """Clear a whole run, as a user re-runs it from the UI (every task runs again, in the same run)."""
        self.user_change(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/clear", {"dry_run": False}
        )

    def pause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})

    def set_variable(self, key: str, value: str) -> None:
        try:
            self.request("PATCH", f"/api/v2/variables/{key}", {"key": key, "value": value})
        except RuntimeError:
            self.request("POST", "/api/v2/variables", {"key": key, "value": value})


def _log_line(entry: Any) -> str:
    """One structured log entry as text: the event, plus the exception type and message when there is one."""
    if not isinstance(entry, dict):
        return str(entry)
    line = str(entry.get("event", entry))
    for err in entry.get("error_detail") or []:
        if isinstance(err, dict):
            line += f"\n{err.get('exc_type')}: {err.get('exc_value')}"
    return line
