"""A run task holds the plan it got through XCom against the current settings before any pod (issue 25).

The plan (the script's spec and the run's settings) is discovery's XCom: anyone who can write XCom, or a plan
kept from before a settings change, could otherwise hand a pod another image or identity.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from script_runner.config.compat import AirflowFailException
from script_runner.config.settings import RunnerSettings, settings_to_wire
from script_runner.config.settings_loader import load_settings
from script_runner.discover.spec import ScriptSpec
from script_runner.report.build import build_report
from script_runner.run.ledger import Ledger
from script_runner.run.operator import ScriptPodOperator
from tests.unit.script_runner.run.test_operator import SCRIPT, FakeTI

IMAGE = "localhost/script-runner:local"  # the local preset's image
EMAIL = "loader@p.iam.gserviceaccount.com"


def _settings(**variable: Any) -> RunnerSettings:
    """Local-preset settings with folders kept apart: team-a/ may run as writer, nothing else is bound."""
    base: dict[str, Any] = {"identity_bindings": {"team-a/": {"service_accounts": ["writer"]}}}
    return load_settings(
        variable=json.dumps({**base, **variable}),
        environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "local"},
    )


def _impersonating() -> RunnerSettings:
    """Composer 3: a script's service_account= is a Google account to impersonate, bound to team-a/."""
    return load_settings(
        variable=json.dumps(
            {
                "image": IMAGE,
                "service_account_allowlist": {"loader": EMAIL},
                "identity_bindings": {"team-a/": {"service_accounts": ["loader"]}},
            }
        ),
        environ={"GCS_BUCKET": "b", "SCRIPT_RUNNER_PRESET": "composer3"},
    )


class PodRequests:
    """KubernetesPodOperator's launch, counted: a refused plan must never get here."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, op: Any, context: Any, **kwargs: Any) -> None:
        self.calls.append(op.script_path)


@pytest.fixture
def pods(monkeypatch: pytest.MonkeyPatch) -> PodRequests:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    requests = PodRequests()
    monkeypatch.setattr(KubernetesPodOperator, "execute", requests)
    monkeypatch.setattr(KubernetesPodOperator, "build_pod_request_obj", requests)
    return requests


@pytest.fixture
def run_task(monkeypatch: pytest.MonkeyPatch, gcs_client: Any, make_bucket: Any) -> Any:
    """Build the mapped run task from a plan as the DAG does (wire settings in it), with ``current`` as what
    the Variable and environment say now; the ledger is a bucket of the GCS emulator. Returns the task's
    error and the ledger."""
    import script_runner.run.operator as operator_module
    import script_runner.run.plan_check as plan_check_module

    bucket = make_bucket({}).name
    ledger = Ledger(gcs_client, bucket=bucket, root="script-runner")
    monkeypatch.setattr(operator_module, "ledger_for_connection", lambda *a, **k: ledger)

    def run(plan: dict[str, Any], *, planned: RunnerSettings, current: RunnerSettings) -> str:
        monkeypatch.setattr(plan_check_module, "load_settings_from_airflow", lambda: current)
        op = ScriptPodOperator(task_id="run_scripts", script={**plan, "settings": settings_to_wire(planned)})
        context = {"run_id": "r1", "ti": FakeTI(), "task_reschedule_count": 0, "params": {}}
        with pytest.raises(AirflowFailException) as info:
            op.execute(context)
        return str(info.value)

    run.ledger = ledger  # type: ignore[attr-defined]
    return run


def test_plan_check_refuses_another_image_before_any_pod(run_task: Any, pods: PodRequests) -> None:
    settings = _settings()
    error = run_task({**SCRIPT, "image": "evil.example/miner:1"}, planned=settings, current=settings)
    assert error.startswith("etl/load.sh: refused before any pod was started")
    assert "image 'evil.example/miner:1' is not in the image allowlist" in error
    assert "start a new run" in error  # the fix
    assert pods.calls == []
    attempts = run_task.ledger.read("r1", "etl/load.sh")
    assert [(r["status"], r["action"]) for r in attempts] == [("error", "fail")]
    report = build_report(
        dag_id="d",
        run_id="r1",
        source="gs://b/data/",
        shards=[[SCRIPT]],
        rejected=[],
        attempts={"etl/load.sh": attempts},
        states={"etl/load.sh": "failed"},
    )
    (row,) = report["scripts"]
    assert row["status"] == "error"
    assert row["reason"].startswith("etl/load.sh: refused before any pod was started")


def test_plan_check_refuses_an_identity_not_bound_to_the_scripts_folder(
    run_task: Any, pods: PodRequests
) -> None:
    settings = _settings()
    error = run_task({**SCRIPT, "service_account": "writer"}, planned=settings, current=settings)
    assert "service_account=writer: this script's folder may not use it" in error
    assert pods.calls == []


def test_plan_check_refuses_a_plan_whose_own_settings_were_widened(run_task: Any, pods: PodRequests) -> None:
    """The plan's settings are XCom too: an allowlist or binding written into them grants nothing."""
    current = _settings()
    widened = _settings(image_allowlist=["*"], identity_bindings={"*": {"service_accounts": ["writer"]}})
    plan = {**SCRIPT, "image": "evil.example/miner:1", "service_account": "writer"}
    error = run_task(plan, planned=widened, current=current)
    assert "image 'evil.example/miner:1' is not in the image allowlist" in error
    assert "service_account=writer" in error
    assert pods.calls == []


def test_plan_check_refuses_a_stale_plan_after_the_image_setting_changed(
    run_task: Any, pods: PodRequests
) -> None:
    before = _settings()
    after = _settings(image="localhost/script-runner:v2")
    error = run_task(dict(SCRIPT), planned=before, current=after)
    assert f"image {IMAGE!r} is not in the image allowlist" in error
    assert "if the settings changed since this run's discovery, start a new run" in error
    assert pods.calls == []


def test_plan_check_refuses_another_namespace_or_env_from_the_plan(run_task: Any, pods: PodRequests) -> None:
    current = _settings()
    moved = _settings(namespace="kube-system", extra_env={"TOKEN": "s3cret"})
    error = run_task(dict(SCRIPT), planned=moved, current=current)
    assert "namespace is 'kube-system' in the plan, 'composer-user-workloads' in the settings" in error
    assert "extra_env differs from the settings' in TOKEN" in error
    assert "s3cret" not in error  # an env value is never shown
    assert pods.calls == []


def test_plan_check_refuses_identity_variables_smuggled_in_env(run_task: Any, pods: PodRequests) -> None:
    settings = _settings()
    error = run_task({**SCRIPT, "env": {"RUNNER_IMPERSONATE": EMAIL}}, planned=settings, current=settings)
    assert "env=RUNNER_IMPERSONATE is reserved" in error
    assert pods.calls == []


@pytest.mark.parametrize("with_settings", [True, False], ids=["plan-from-an-earlier-release", "plan"])
def test_plan_check_refuses_the_task_when_the_current_settings_are_invalid(
    monkeypatch: pytest.MonkeyPatch, pods: PodRequests, with_settings: bool
) -> None:
    """Whether the plan brings settings (an earlier release's) or not, the task is built and then refused
    before any pod, naming why the current settings cannot be read."""
    import script_runner.run.plan_check as plan_check_module
    from script_runner.exceptions import SettingsError

    def broken() -> RunnerSettings:
        raise SettingsError("Variable script_runner_settings is not valid JSON")

    monkeypatch.setattr(plan_check_module, "load_settings_from_airflow", broken)
    monkeypatch.setenv("GCS_BUCKET", "b")
    plan = {**SCRIPT, "settings": settings_to_wire(_settings())} if with_settings else dict(SCRIPT)
    op = ScriptPodOperator(task_id="run_scripts", script=plan)
    with pytest.raises(
        AirflowFailException,
        match=r"current settings are invalid, so its plan cannot be checked.*not valid JSON",
    ):
        op.execute({"run_id": "r1", "ti": FakeTI(), "task_reschedule_count": 0, "params": {}})
    assert pods.calls == []


def test_a_plan_without_settings_runs_with_the_current_ones_read_once(
    monkeypatch: pytest.MonkeyPatch, pods: PodRequests, gcs_client: Any, make_bucket: Any
) -> None:
    """Discovery's items carry no settings: the task reads the Variable once, and the same settings are what
    the pod is built from and what the plan is held against."""
    import script_runner.run.operator as operator_module
    import script_runner.run.plan_check as plan_check_module

    current = _settings(namespace="team-ns")
    reads: list[int] = []

    def read() -> RunnerSettings:
        reads.append(1)
        return current

    monkeypatch.setattr(plan_check_module, "load_settings_from_airflow", read)
    ledger = Ledger(gcs_client, bucket=make_bucket({}).name, root="script-runner")
    monkeypatch.setattr(operator_module, "ledger_for_connection", lambda *a, **k: ledger)
    op = ScriptPodOperator(task_id="run_scripts", script=dict(SCRIPT))
    assert op.runner_settings is current
    assert op.namespace == "team-ns"
    op.execute({"run_id": "r1", "ti": FakeTI(), "task_reschedule_count": 0, "params": {"rerun": True}})
    assert pods.calls == ["etl/load.sh"]
    assert reads == [1]
    # What the current settings do not allow is refused all the same.
    bad = ScriptPodOperator(task_id="run_scripts", script={**SCRIPT, "image": "evil.example/miner:1"})
    with pytest.raises(AirflowFailException, match="not in the image allowlist"):
        bad.execute({"run_id": "r1", "ti": FakeTI(), "task_reschedule_count": 0, "params": {"rerun": True}})
    assert pods.calls == ["etl/load.sh"]


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        pytest.param({"path": "team-a/load.sh", "impersonate": EMAIL}, None, id="bound-folder"),
        pytest.param({}, None, id="no-identity"),
        pytest.param(
            {"impersonate": EMAIL},
            f"service_account={EMAIL}: this script's folder may not use it",
            id="unbound",
        ),
        pytest.param(
            {"path": "team-a/load.sh", "impersonate": "admin@p.iam.gserviceaccount.com"},
            "is not allowed to be impersonated",
            id="not-allowlisted",
        ),
        pytest.param(
            {"path": "team-a/load.sh", "service_account": "default"},
            "service_account is 'default' in the plan; the settings give None",
            id="kubernetes-account-in-impersonate-mode",
        ),
    ],
)
def test_plan_check_holds_impersonation_to_the_allowlist_and_bindings(
    plan: dict[str, Any], problem: str | None
) -> None:
    from script_runner.run.plan_check import plan_problems

    settings = _impersonating()
    spec = ScriptSpec.model_validate({**SCRIPT, **plan})
    problems = plan_problems(spec, settings, settings)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_plan_check_passes_what_discovery_plans_and_then_the_pod_is_requested(
    monkeypatch: pytest.MonkeyPatch, pods: PodRequests
) -> None:
    """The common path is unchanged: a plan the settings give runs its pod (here: the stand-in)."""
    import script_runner.run.plan_check as plan_check_module
    from script_runner.run.plan_check import plan_problems

    settings = _settings()
    monkeypatch.setattr(plan_check_module, "load_settings_from_airflow", lambda: settings)
    plan = {
        **SCRIPT,
        "path": "team-a/load.sh",
        "service_account": "writer",
        "settings": settings_to_wire(settings),
    }
    op = ScriptPodOperator(task_id="run_scripts", script=plan)
    assert plan_problems(op.script_spec, op.runner_settings, settings) == []
    monkeypatch.setattr(op, "_done_for_interval", lambda *a, **k: False)  # no done-marker bucket here
    monkeypatch.setattr(op, "_record", lambda *a, **k: None)
    op.execute({"run_id": "r1", "ti": FakeTI(), "task_reschedule_count": 0, "params": {}})
    assert pods.calls == ["team-a/load.sh"]
