"""Pod Security admission: the namespace's ``pod-security.kubernetes.io/enforce`` level, checked on create.

The baseline and restricted checks that matter for batch pods (privileged, host namespaces, hostPath and
other volume types, host ports, capabilities, privilege escalation, non-root, seccomp), each with the
reason and detail wording of the upstream admission plugin. Not checked: AppArmor, SELinux options,
/proc mount type, sysctls, Windows host process, and the ``warn``/``audit`` modes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
# Baseline allows these added capabilities (the container runtime's defaults).
_BASELINE_CAPS = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
    "secret",
}  # fmt: skip

_CAPS_ADD = "securityContext.capabilities.add"
_GOOD_SECCOMP = 'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
Pod = dict[str, Any]
Check = Callable[[Pod], "tuple[str, str] | None"]


def _containers(pod: Pod) -> Iterator[dict[str, Any]]:
    spec = pod.get("spec") or {}
    for group in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(group) or []


def _ctx(container: dict[str, Any]) -> dict[str, Any]:
    return container.get("securityContext") or {}


def _pod_ctx(pod: Pod) -> dict[str, Any]:
    return (pod.get("spec") or {}).get("securityContext") or {}


def _quoted(items: list[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def _who(kind: str, names: list[str]) -> str:
    """``container "a"`` or ``containers "a", "b"``, as the plugin words it."""
    return f"{kind}{'s' if len(names) > 1 else ''} {_quoted(names)}"


def _host_namespaces(pod: Pod) -> tuple[str, str] | None:
    spec = pod.get("spec") or {}
    bad = [f"{key}=true" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    return ("host namespaces", ", ".join(bad)) if bad else None


def _privileged(pod: Pod) -> tuple[str, str] | None:
    bad = [c["name"] for c in _containers(pod) if _ctx(c).get("privileged")]
    return (
        ("privileged", f"{_who('container', bad)} must not set securityContext.privileged=true")
        if bad
        else None
    )


def _baseline_capabilities(pod: Pod) -> tuple[str, str] | None:
    details = []
    for c in _containers(pod):
        added = [
            cap for cap in (_ctx(c).get("capabilities") or {}).get("add") or [] if cap not in _BASELINE_CAPS
        ]
        if added:
            details.append(f'container "{c["name"]}" must not include {_quoted(added)} in {_CAPS_ADD}')
    return ("non-default capabilities", "; ".join(details)) if details else None


def _host_path(pod: Pod) -> tuple[str, str] | None:
    bad = [v["name"] for v in (pod.get("spec") or {}).get("volumes") or [] if v.get("hostPath") is not None]
    return ("hostPath volumes", _who("volume", bad)) if bad else None


def _host_ports(pod: Pod) -> tuple[str, str] | None:
    details = []
    for c in _containers(pod):
        ports = [str(p["hostPort"]) for p in c.get("ports") or [] if p.get("hostPort")]
        if ports:
            details.append(
                f"{_who('container', [c['name']])} uses hostPort{'s' if len(ports) > 1 else ''} "
                + ", ".join(ports)
            )
    return ("hostPort", "; ".join(details)) if details else None


def _seccomp_baseline(pod: Pod) -> tuple[str, str] | None:
    bad = []
    if (_pod_ctx(pod).get("seccompProfile") or {}).get("type") == "Unconfined":
        bad.append("pod")
    bad += [
        f'container "{c["name"]}"'
        for c in _containers(pod)
        if (_ctx(c).get("seccompProfile") or {}).get("type") == "Unconfined"
    ]
    if not bad:
        return None
    return (
        "seccompProfile",
        f'{" and ".join(bad)} must not set securityContext.seccompProfile.type to "Unconfined"',
    )


def _volume_types(pod: Pod) -> tuple[str, str] | None:
    details = []
    for v in (pod.get("spec") or {}).get("volumes") or []:
        kinds = [k for k in v if k != "name" and k not in _RESTRICTED_VOLUMES]
        if kinds:
            details.append(f'volume "{v["name"]}" uses restricted volume type "{kinds[0]}"')
    return ("restricted volume types", ", ".join(details)) if details else None


def _privilege_escalation(pod: Pod) -> tuple[str, str] | None:
    bad = [c["name"] for c in _containers(pod) if _ctx(c).get("allowPrivilegeEscalation") is not False]
    if not bad:
        return None
    return (
        "allowPrivilegeEscalation != false",
        f"{_who('container', bad)} must set securityContext.allowPrivilegeEscalation=false",
    )


def _restricted_capabilities(pod: Pod) -> tuple[str, str] | None:
    no_drop, details = [], []
    for c in _containers(pod):
        caps = _ctx(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            no_drop.append(c["name"])
        added = [cap for cap in caps.get("add") or [] if cap != "NET_BIND_SERVICE"]
        if added:
            details.append(f'container "{c["name"]}" must not include {_quoted(added)} in {_CAPS_ADD}')
    if no_drop:
        details.insert(0, f'{_who("container", no_drop)} must set securityContext.capabilities.drop=["ALL"]')
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def _run_as_non_root(pod: Pod) -> tuple[str, str] | None:
    pod_value = _pod_ctx(pod).get("runAsNonRoot")
    explicit_false = [c["name"] for c in _containers(pod) if _ctx(c).get("runAsNonRoot") is False]
    unset = [c["name"] for c in _containers(pod) if _ctx(c).get("runAsNonRoot") is None]
    details = []
    if pod_value is False:
        details.append("pod must not set securityContext.runAsNonRoot=false")
    if explicit_false:
        details.append(f"{_who('container', explicit_false)} must not set securityContext.runAsNonRoot=false")
    if pod_value is not True and unset:
        details.append(f"pod or {_who('container', unset)} must set securityContext.runAsNonRoot=true")
    return ("runAsNonRoot != true", "; ".join(details)) if details else None


def _run_as_user(pod: Pod) -> tuple[str, str] | None:
    details = ["pod must not set runAsUser=0"] if _pod_ctx(pod).get("runAsUser") == 0 else []
    bad = [c["name"] for c in _containers(pod) if _ctx(c).get("runAsUser") == 0]
    if bad:
        details.append(f"{_who('container', bad)} must not set runAsUser=0")
    return ("runAsUser=0", "; ".join(details)) if details else None


def _seccomp_restricted(pod: Pod) -> tuple[str, str] | None:
    good = ("RuntimeDefault", "Localhost")
    pod_type = (_pod_ctx(pod).get("seccompProfile") or {}).get("type")
    bad, unset = [], []
    for c in _containers(pod):
        ctype = (_ctx(c).get("seccompProfile") or {}).get("type")
        if ctype is None:
            unset.append(c["name"])
        elif ctype not in good:
            bad.append(c["name"])
    details = []
    if pod_type is not None and pod_type not in good:
        details.append(f'pod must not set securityContext.seccompProfile.type to "{pod_type}"')
    if bad:
        details.append(
            f'{_who("container", bad)} must not set securityContext.seccompProfile.type to "Unconfined"'
        )
    if pod_type is None and unset:
        details.append(f"pod or {_who('container', unset)} must set {_GOOD_SECCOMP}")
    return ("seccompProfile", "; ".join(details)) if details else None


# In the plugin's order: the baseline checks by ID, then the restricted ones by ID.
_BASELINE: list[Check] = [
    _baseline_capabilities, _host_namespaces, _host_path, _host_ports, _privileged, _seccomp_baseline,
]  # fmt: skip
# Restricted replaces the baseline capability and seccomp checks with stricter ones.
_RESTRICTED: list[Check] = [
    _host_namespaces, _host_path, _host_ports, _privileged, _privilege_escalation, _restricted_capabilities,
    _volume_types, _run_as_non_root, _run_as_user, _seccomp_restricted,
]  # fmt: skip


def violations(pod: Pod, level: str) -> list[tuple[str, str]]:
    """The (reason, detail) pairs the pod breaks at ``level`` (empty when it is allowed).

    :param level: "privileged", "baseline" or "restricted".
    """
    checks = {"baseline": _BASELINE, "restricted": _RESTRICTED}.get(level, [])
    return [found for check in checks if (found := check(pod)) is not None]


def forbidden_message(pod_name: str, level: str, found: list[tuple[str, str]]) -> str:
    """The admission error as the API server returns it (403, reason Forbidden)."""
    listed = ", ".join(f"{reason} ({detail})" for reason, detail in found)
    return f'pods "{pod_name}" is forbidden: violates PodSecurity "{level}:latest": {listed}'


def level_of(namespace: dict[str, Any] | None) -> str:
    """The enforced level from the namespace's labels ("privileged" when unset or unknown)."""
    value = ((namespace or {}).get("metadata", {}).get("labels") or {}).get(ENFORCE_LABEL, "privileged")
    return value if value in LEVELS else "privileged"
