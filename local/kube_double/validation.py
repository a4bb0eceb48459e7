"""Object validation as the API server does it on create and update (pkg/apis/core/validation, in part)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from local.kube_double import names, quantity
from local.kube_double.field_errors import FieldError, invalid, not_supported, required

if TYPE_CHECKING:
    from collections.abc import Callable

Errors = list[FieldError]
ANNOTATIONS_MAX_BYTES = 256 * 1024
_STANDARD_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_VOLUME_SOURCES = {
    "emptyDir", "hostPath", "secret", "configMap", "projected", "persistentVolumeClaim", "downwardAPI",
    "csi", "ephemeral", "nfs", "gcePersistentDisk", "image",
}  # fmt: skip
_POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _name_errors(path: str, value: str, rule: Callable[[str], list[str]]) -> Errors:
    return [invalid(path, value, msg) for msg in rule(value)]


def object_meta(meta: dict[str, Any], name_rule: Callable[[str], list[str]]) -> Errors:
    """Name (or generateName), labels and annotations of any object."""
    errs: Errors = []
    name = meta.get("name")
    if not name:
        errs.append(required("metadata.name", "name or generateName is required"))
    else:
        errs += _name_errors("metadata.name", str(name), name_rule)
    errs += labels("metadata.labels", meta.get("labels") or {})
    notes = meta.get("annotations") or {}
    for key in notes:
        errs += _name_errors("metadata.annotations", key, names.qualified_name)
    size = sum(len(str(k)) + len(str(v)) for k, v in notes.items())
    if size > ANNOTATIONS_MAX_BYTES:
        errs.append(
            FieldError(
                "TooLong", "metadata.annotations", None, f"must have at most {ANNOTATIONS_MAX_BYTES} bytes"
            )
        )
    return errs


def labels(path: str, values: dict[str, Any]) -> Errors:
    """Label keys and values (also node selectors)."""
    errs: Errors = []
    for key, value in values.items():
        errs += _name_errors(path, key, names.qualified_name)
        errs += _name_errors(path, "" if value is None else str(value), names.label_value)
    return errs


def decode_pod(pod: dict[str, Any]) -> str | None:
    """Why the body cannot be decoded as a Pod (a bad quantity), as the API server's decoder says it."""
    for container in _all_containers(pod.get("spec") or {}):
        for kind in ("limits", "requests"):
            for value in ((container.get("resources") or {}).get(kind) or {}).values():
                try:
                    quantity.parse(value)
                except quantity.QuantityError as exc:
                    return f'Pod in version "v1" cannot be handled as a Pod: {exc}'
    return None


def _all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def pod(obj: dict[str, Any]) -> Errors:
    """Everything checked when a pod is created."""
    errs = object_meta(obj.get("metadata") or {}, names.dns1123_subdomain)
    return errs + pod_spec(obj.get("spec") or {})


def pod_spec(spec: dict[str, Any]) -> Errors:
    """The pod spec: containers, volumes, policies, service account, node selector."""
    errs = _volumes(spec.get("volumes") or [])
    volume_names = {v.get("name") for v in spec.get("volumes") or []}
    if not spec.get("containers"):
        errs.append(required("spec.containers"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            path = f"spec.{group}[{i}]"
            name = container.get("name") or ""
            if name and name in seen:
                errs.append(FieldError("Duplicate", f"{path}.name", name))
            seen.add(name)
            errs += container_errors(path, container, volume_names)
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        errs.append(not_supported("spec.restartPolicy", policy, ["Always", "OnFailure", "Never"]))
    dns = spec.get("dnsPolicy", "ClusterFirst")
    if dns not in ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"):
        allowed = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
        errs.append(not_supported("spec.dnsPolicy", dns, allowed))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not (isinstance(deadline, int) and 1 <= deadline <= 2**31 - 1):
        errs.append(
            invalid("spec.activeDeadlineSeconds", deadline, "must be between 1 and 2147483647, inclusive")
        )
    account = spec.get("serviceAccountName")
    if account:
        errs += _name_errors("spec.serviceAccountName", account, names.dns1123_subdomain)
    errs += labels("spec.nodeSelector", spec.get("nodeSelector") or {})
    return errs


def _volumes(volumes: list[dict[str, Any]]) -> Errors:
    errs: Errors = []
    seen: set[str] = set()
    for i, volume in enumerate(volumes):
        path = f"spec.volumes[{i}]"
        name = volume.get("name") or ""
        if not name:
            errs.append(required(f"{path}.name"))
        else:
            errs += _name_errors(f"{path}.name", name, names.dns1123_label)
            if name in seen:
                errs.append(FieldError("Duplicate", f"{path}.name", name))
        seen.add(name)
        sources = [k for k in volume if k != "name" and volume[k] is not None]
        if not sources:
            errs.append(required(path, "must specify a volume type"))
        elif len(sources) > 1:
            errs.append(
                FieldError(
                    "Forbidden", f"{path}.{sources[1]}", None, "may not specify more than 1 volume type"
                )
            )
    return errs


def container_errors(path: str, container: dict[str, Any], volume_names: set[Any]) -> Errors:
    """One container: name, image, pull policy, env, mounts, resources, ports."""
    errs: Errors = []
    name = container.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name"))
    else:
        errs += _name_errors(f"{path}.name", name, names.dns1123_label)
    if not container.get("image"):
        errs.append(required(f"{path}.image"))
    pull = container.get("imagePullPolicy")
    if pull is not None and pull not in ("Always", "IfNotPresent", "Never"):
        errs.append(not_supported(f"{path}.imagePullPolicy", pull, ["Always", "IfNotPresent", "Never"]))
    for j, env in enumerate(container.get("env") or []):
        if not env.get("name"):
            errs.append(required(f"{path}.env[{j}].name"))
        else:
            errs += _name_errors(f"{path}.env[{j}].name", env["name"], names.env_var_name)
    errs += _mounts(path, container.get("volumeMounts") or [], volume_names)
    for j, port in enumerate(container.get("ports") or []):
        number = port.get("containerPort")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            errs.append(
                invalid(f"{path}.ports[{j}].containerPort", number, "must be between 1 and 65535, inclusive")
            )
    return errs + resources(f"{path}.resources", container.get("resources") or {})


def _mounts(path: str, mounts: list[dict[str, Any]], volume_names: set[Any]) -> Errors:
    errs: Errors = []
    mount_paths: set[str] = set()
    for j, mount in enumerate(mounts):
        mpath = f"{path}.volumeMounts[{j}]"
        if not mount.get("name"):
            errs.append(required(f"{mpath}.name"))
        elif mount["name"] not in volume_names:
            errs.append(FieldError("NotFound", f"{mpath}.name", mount["name"]))
        if not mount.get("mountPath"):
            errs.append(required(f"{mpath}.mountPath"))
        elif mount["mountPath"] in mount_paths:
            errs.append(invalid(f"{mpath}.mountPath", mount["mountPath"], "must be unique"))
        mount_paths.add(mount.get("mountPath") or "")
    return errs


def resources(path: str, res: dict[str, Any]) -> Errors:
    """Resource names, non-negative quantities, and requests not above limits."""
    errs: Errors = []
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    for kind, values in (("limits", limits), ("requests", requests)):
        for rname, value in values.items():
            rpath = f"{path}.{kind}[{rname}]"
            if rname not in _STANDARD_RESOURCES and not rname.startswith("hugepages-") and "/" not in rname:
                errs.append(invalid(rpath, rname, "must be a standard resource type or fully qualified"))
            if quantity.parse(value) < 0:
                errs.append(invalid(rpath, str(value), "must be greater than or equal to 0"))
    for rname, value in requests.items():
        if rname in limits and quantity.parse(value) > quantity.parse(limits[rname]):
            detail = f"must be less than or equal to {rname} limit of {limits[rname]}"
            errs.append(invalid(f"{path}.requests", str(value), detail))
    return errs


def pod_update(old: dict[str, Any], new: dict[str, Any]) -> Errors:
    """An update: valid metadata, immutable identity, and only the few spec fields a pod may change."""
    errs = object_meta(new.get("metadata") or {}, names.dns1123_subdomain)
    for key in ("name", "namespace", "uid", "creationTimestamp"):
        if (new.get("metadata") or {}).get(key) != (old.get("metadata") or {}).get(key):
            errs.append(
                invalid(f"metadata.{key}", (new.get("metadata") or {}).get(key), "field is immutable")
            )
    if _mutable_spec_stripped(old.get("spec") or {}) != _mutable_spec_stripped(new.get("spec") or {}):
        errs.append(FieldError("Forbidden", "spec", None, _POD_UPDATE_FORBIDDEN))
    return errs


def _mutable_spec_stripped(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec without the fields a pod update may change."""
    out = {k: v for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations")}
    for group in ("initContainers", "containers"):
        if group in out:
            out[group] = [{k: v for k, v in c.items() if k != "image"} for c in out[group] or []]
    return out


def namespace(obj: dict[str, Any]) -> Errors:
    """A namespace: an RFC 1123 label name, labels, annotations."""
    return object_meta(obj.get("metadata") or {}, names.dns1123_label)
