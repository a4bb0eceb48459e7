"""Adopting a finished pod of a try Airflow lost, instead of deleting it and running the script again.

A mixin of :class:`~script_runner.run.operator.ScriptPodOperator` (before the KubernetesPodOperator in its
bases): it wraps three KPO methods. The decision itself is :func:`~script_runner.run.attempts.lost_try_pod`.
The operator sets ``_earlier`` (this run's attempt records) and ``_context`` before launching.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from script_runner.run.attempts import lost_try_pod

if TYPE_CHECKING:
    from kubernetes.client import models as k8s

log = logging.getLogger(__name__)


class AdoptsLostTryPods:
    """KPO's pod lookup and deferrable launch, adopting a lost try's finished pod."""

    script_path: str
    pod: Any
    pod_request_obj: Any
    _context: Any
    _earlier: list[dict[str, Any]]
    _adopting: bool = False  # inside get_or_create_pod: a lost try's finished pod may be adopted
    _adopted: Any = None

    def get_or_create_pod(self, pod_request_obj: k8s.V1Pod, context: Any) -> k8s.V1Pod:
        """KPO's lookup, except that a finished pod of a try Airflow lost is adopted (see
        :func:`~script_runner.run.attempts.lost_try_pod`): KPO keeps a pod whose deletion it was refused."""
        self._adopting = True
        try:
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
