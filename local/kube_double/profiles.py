"""Admission profiles, chosen per namespace by a label: the platform rules a namespace's pods meet.

``kube-double.local/admission-profile: gke-autopilot`` mutates pods to GKE Autopilot's resource rules
(Composer 2's cluster); ``composer3`` refuses what Cloud Composer 3 refuses and runs every pod in
``composer-user-workloads`` whatever namespace was asked. They run after validation and before Pod Security,
like the webhooks of a real cluster. ``--namespace-profile NS:PROFILE`` sets the label at start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from local.kube_double import admission_autopilot, admission_composer3

if TYPE_CHECKING:
    from local.kube_double.store import Store

PROFILE_LABEL = "kube-double.local/admission-profile"
PROFILES = ("gke-autopilot", "composer3")
COMPOSER3_NAMESPACE = "composer-user-workloads"


def profile_of(namespace: dict[str, Any] | None) -> str | None:
    """The namespace's admission profile (None when it has none or an unknown one)."""
    value = ((namespace or {}).get("metadata", {}).get("labels") or {}).get(PROFILE_LABEL)
    return value if value in PROFILES else None


def target_namespace(store: Store, asked: str) -> str:
    """Where a pod request for namespace ``asked`` goes.

    Composer 3 runs pods in ``composer-user-workloads`` even when another namespace is specified: when
    that namespace has the composer3 profile, every pod request lands there (the double then stands for
    a Composer 3 environment's cluster as its Airflow workers see it). A composer3 profile on another
    namespace applies the rules there, without the redirection.

    :param asked: the namespace in the request's path.
    """
    home = store.get("namespaces", "", COMPOSER3_NAMESPACE)
    return COMPOSER3_NAMESPACE if profile_of(home) == "composer3" else asked


def admit(pod: dict[str, Any], namespace: dict[str, Any] | None) -> str | None:
    """Run the namespace's profile on a new pod: mutate it in place, or return why it is refused.

    :param pod: the validated pod.
    :param namespace: the namespace object the pod is created in.
    """
    profile = profile_of(namespace)
    if profile == "gke-autopilot":
        return admission_autopilot.admit(pod)
    if profile == "composer3":
        problems = admission_composer3.violations(pod)
        return admission_composer3.denial(problems) if problems else None
    return None
