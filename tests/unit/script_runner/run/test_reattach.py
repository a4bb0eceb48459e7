"""Reattachment on every supported provider: KPO's own lookups (label search; on cncf-kubernetes 10.20+
with Airflow 3.3 the saved pod name) never hand a try another run's, script's or later try's pod."""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client import models as k8s

from script_runner.config import constants as c
from script_runner.config.compat import airflow_version
from script_runner.run.operator import ScriptPodOperator
from script_runner.run.pod_spec import path_hash
from tests.unit.script_runner.run.test_operator import SCRIPT, SETTINGS


def _has_durable() -> bool:
    import inspect

    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    return "durable" in inspect.signature(KubernetesPodOperator.__init__).parameters


# Where KPO looks the pod up by the name it saved for the task: cncf-kubernetes 10.20+ on Airflow 3.3+.
needs_saved_identity = pytest.mark.skipif(
    not (_has_durable() and airflow_version() >= (3, 3)),
    reason="no saved pod identity (cncf-kubernetes < 10.20 or Airflow < 3.3): label lookup only",
)


def _pod(name: str, *, run_id: str = "r2", try_number: int = 2, path: str = SCRIPT["path"]) -> k8s.V1Pod:
    labels = {
        "dag_id": "gcs_script_runner",
        "task_id": "run_scripts",
        "run_id": run_id,
        "map_index": "0",
        "kubernetes_pod_operator": "True",
        "try_number": str(try_number),
        c.LABEL_SCRIPT_HASH: path_hash(path),
    }
    meta = k8s.V1ObjectMeta(
        name=name, namespace="ns", labels=labels, annotations={c.ANNOTATION_SCRIPT_PATH: path}
    )
    return k8s.V1Pod(metadata=meta, status=k8s.V1PodStatus(phase="Running"))


class StateStore:
    """The Task SDK's task_state_store: what KPO saved for the task instance."""

    def __init__(self, saved: dict[str, str] | None = None) -> None:
        self.saved: dict[str, Any] = {"pod_identifier": saved} if saved else {}

    def get(self, key: str) -> Any:
        return self.saved.get(key)

    def set(self, key: str, value: Any) -> None:
        self.saved[key] = value


class FakeKube:
    """The Kubernetes API as KPO's lookups call it: one existing pod (or none), pods created."""

    def __init__(self, existing: k8s.V1Pod | None) -> None:
        self.existing, self.created = existing, list[str]()

    def get_pod(self, name: str, namespace: str) -> k8s.V1Pod:
        assert self.existing is not None
        assert self.existing.metadata.name == name
        return self.existing

    def list_namespaced_pod(self, *, namespace: str, label_selector: str) -> Any:
        return SimpleNamespace(items=[self.existing] if self.existing is not None else [])

    def create_pod(self, *, pod: k8s.V1Pod) -> k8s.V1Pod:
        self.created.append(pod.metadata.name)
        return pod


def _launch(existing: k8s.V1Pod | None, *, store: StateStore | None = None) -> tuple[k8s.V1Pod, FakeKube]:
    """Run KPO's own get_or_create_pod for try 2 of run r2's etl/load.sh; what it returned and created."""
    op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS)
    kube = FakeKube(existing)
    op.__dict__.update(hook=kube, client=kube, pod_manager=kube)
    ti = SimpleNamespace(dag_id="gcs_script_runner", task_id="run_scripts", map_index=0, try_number=2)
    context: dict[str, Any] = {"ti": ti, "run_id": "r2", "dag": SimpleNamespace()}
    if store is not None:
        context["task_state_store"] = store
    op._context, op._earlier = context, []
    request = _pod("sr-etl-load-new")
    return op.get_or_create_pod(request, context), kube


def test_operator_reattaches_without_a_deprecation_warning_on_this_provider() -> None:
    """cncf-kubernetes 10.20+ warns on every task given ``reattach_on_restart``; ours is on, unwarned."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        op = ScriptPodOperator(task_id="run_scripts", script=SCRIPT, runner_settings=SETTINGS)
    about = [str(w.message) for w in seen if "reattach" in str(w.message) or "durable" in str(w.message)]
    assert about == []
    assert op.reattach_on_restart is True  # every provider keeps it (10.2x mirrors ``durable``)


@needs_saved_identity
def test_operator_never_reattaches_to_another_runs_pod_named_by_the_saved_identity() -> None:
    """apache/airflow#71743: the saved name (no uid) names a pod of run r1; run r2's try gets its own."""
    other_run = _pod("sr-etl-load-same-name", run_id="r1")
    store = StateStore({"name": "sr-etl-load-same-name", "namespace": "ns"})
    got, kube = _launch(other_run, store=store)
    assert got.metadata.name == "sr-etl-load-new"
    assert kube.created == ["sr-etl-load-new"]


@needs_saved_identity
def test_operator_reattaches_to_its_own_running_pod_named_by_the_saved_identity() -> None:
    own = _pod("sr-etl-load-own")
    got, kube = _launch(own, store=StateStore({"name": "sr-etl-load-own", "namespace": "ns"}))
    assert got is own
    assert kube.created == []


@pytest.mark.parametrize(
    ("found", "reattached"),
    [
        pytest.param(_pod("p", try_number=1), True, id="earlier-try-of-a-lost-worker"),
        pytest.param(_pod("p", try_number=2), True, id="this-try"),
        pytest.param(_pod("p", try_number=3), False, id="later-try"),
        pytest.param(_pod("p", run_id="r1"), False, id="other-run"),
        pytest.param(_pod("p", path="etl/other.sh"), False, id="other-script"),
    ],
)
def test_operator_label_lookup_takes_only_a_pod_of_this_task_and_script(
    found: k8s.V1Pod, reattached: bool
) -> None:
    """KPO's label search (every provider) as the API would answer a broader or reused label set."""
    got, kube = _launch(found)
    assert (got is found) is reattached
    assert kube.created == ([] if reattached else ["sr-etl-load-new"])
