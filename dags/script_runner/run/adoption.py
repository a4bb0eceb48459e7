"""Which pod a try may take over: never another run's, task's, script's or later try's; a lost try's
finished pod is adopted instead of being deleted and the script run again.

A mixin of :class:`~script_runner.run.operator.ScriptPodOperator` (before the KubernetesPodOperator in its
bases): it wraps KPO's pod lookups (the label search, and on cncf-kubernetes 10.20+ with Airflow 3.3 the
pod name saved for the task, which names no uid and can name another run's pod where names repeat,
apache/airflow#71743) with :func:`foreign_pod`, and three KPO methods for adoption, whose decision is
:func:`~script_runner.run.attempts.lost_try_pod`. The operator sets ``_earlier`` (this run's attempt
records) and ``_context`` before launching.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from script_runner.config import constants as c
from script_runner.run.attempts import lost_try_pod
from script_runner.run.pod_spec import path_hash
from script_runner.run.request_dump import no_debug_dump

if TYPE_CHECKING:
    from kubernetes.client import models as k8s

log = logging.getLogger(__name__)

# KPO's labels that name the task instance (its _get_ti_pod_labels); absent ones must be absent on the pod.
_TASK_LABELS = ("dag_id", "task_id", "run_id", "map_index")


def foreign_pod(pod: Any, task_labels: dict[str, str], try_number: int, script_path: str) -> str | None:
    """Why ``pod`` is not this try's to reattach to or adopt (None: it is).

    Ours: the same DAG, task, run and map index as KPO labels them, the same script (its path hash label
    and full path annotation), and this try or an earlier one of the same task instance (KPO reattaches a
    retry to the running pod of a try whose worker was lost; see also ``lost_try_pod``). A later try's
    pod is not (a stale saved name), nor one without a try label.

    :param pod: the pod a lookup found.
    :param task_labels: KPO's labels of this task instance, try excluded (their label-safe values).
    :param try_number: this try's Airflow try number.
    :param script_path: this task's script.
    """
    meta = getattr(pod, "metadata", None)
    labels = getattr(meta, "labels", None) or {}
    for key in _TASK_LABELS:
        if labels.get(key) != task_labels.get(key):
            return f"its {key} is {labels.get(key)!r}, this task's {task_labels.get(key)!r}"
    annotations = getattr(meta, "annotations", None) or {}
    if (
        labels.get(c.LABEL_SCRIPT_HASH) != path_hash(script_path)
        or annotations.get(c.ANNOTATION_SCRIPT_PATH) != script_path
    ):
        return f"it runs {annotations.get(c.ANNOTATION_SCRIPT_PATH)!r}"
    try:
        pod_try = int(labels.get("try_number", ""))
    except ValueError:
        return "it has no try number"
    if pod_try > try_number:
        return f"it is try {pod_try}'s, after this try {try_number}"
    return None


class AdoptsLostTryPods:
    """KPO's pod lookup and deferrable launch, adopting a lost try's finished pod."""

    script_path: str
    pod: Any
    pod_request_obj: Any
    _context: Any
    _earlier: list[dict[str, Any]]
    _adopting: bool = False  # inside get_or_create_pod: a lost try's finished pod may be adopted
    _adopted: Any = None

    def find_pod(self, namespace: str, context: Any, *, exclude_checked: bool = True) -> k8s.V1Pod | None:
        """KPO's label lookup, keeping only a pod of this try (see :func:`foreign_pod`)."""
        found = super().find_pod(namespace, context, exclude_checked=exclude_checked)  # type: ignore[misc]
        return self._only_ours(found, context, "found by its labels")

    def _get_pod_from_task_state_store(self, context: Any) -> k8s.V1Pod | None:
        """The pod named by the identity KPO saved for the task (cncf-kubernetes 10.20+ on Airflow 3.3+),
        only if it is this try's: otherwise KPO falls back to its label lookup (or a new pod)."""
        found = super()._get_pod_from_task_state_store(context)  # type: ignore[misc]
        return self._only_ours(found, context, "named by the task's saved pod identity")

    def _only_ours(self, pod: k8s.V1Pod | None, context: Any, how: str) -> k8s.V1Pod | None:
        if pod is None or context is None:
            return pod
        task_labels = self._get_ti_pod_labels(context, include_try_number=False)  # type: ignore[attr-defined]
        why = foreign_pod(pod, task_labels, int(context["ti"].try_number), self.script_path)
        if why is None:
            return pod
        log.warning(
            "%s: pod %s, %s, is not this task's (%s): not reattached to, left alone",
            self.script_path,
            pod.metadata.name,
            how,
            why,
        )
        return None

    def get_or_create_pod(self, pod_request_obj: k8s.V1Pod, context: Any) -> k8s.V1Pod:
        """KPO's lookup, except that a finished pod of a try Airflow lost is adopted (see
        :func:`~script_runner.run.attempts.lost_try_pod`): KPO keeps a pod whose deletion it was refused.
        KPO's debug YAML of the request is built only when debug logging is on (see request_dump)."""
        self._adopting = True
        try:
            with no_debug_dump(pod_request_obj, self.log):  # type: ignore[attr-defined]
                return super().get_or_create_pod(pod_request_obj, context)  # type: ignore[misc, no-any-return]
        finally:
            self._adopting = False

    def process_pod_deletion(self, pod: k8s.V1Pod, *, reraise: bool = True) -> bool:
        """Delete the pod as KPO does, unless it is a lost try's finished pod found at launch."""
        try_number = getattr(self._context["ti"], "try_number", 0) if self._context else 0
        if self._adopting and lost_try_pod(pod, self._earlier, int(try_number)):
            self._adopted = pod
            log.warning(
                "%s: adopting pod %s, which finished for an earlier try whose end Airflow lost; its outcome "
                "is this attempt's (the script is not started again)",
                self.script_path,
                pod.metadata.name,
            )
            return False
        return bool(super().process_pod_deletion(pod, reraise=reraise))  # type: ignore[misc]

    def execute_async(self, context: Any) -> None:
        """Deferrable launch; an adopted finished pod is read here instead: a trigger on it would fire at
        once, into the same race that lost the earlier try."""
        if self.pod_request_obj is None:
            self.pod_request_obj = self.build_pod_request_obj(context)  # type: ignore[attr-defined]
        if self.pod is None:
            self.pod = self.get_or_create_pod(pod_request_obj=self.pod_request_obj, context=context)
        if self._adopted is not None:
            self.execute_sync(context)  # type: ignore[attr-defined]
            return
        super().execute_async(context)  # type: ignore[misc]
