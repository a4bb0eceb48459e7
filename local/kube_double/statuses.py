"""``Status`` bodies the API server answers errors with (code, reason, message, details)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from local.kube_double.field_errors import aggregate

if TYPE_CHECKING:
    from local.kube_double.field_errors import FieldError

# Kind as Status.details names it (the resource, plural) and as the Invalid message names it (the kind).
_KINDS = {"pods": "Pod", "namespaces": "Namespace", "events": "Event"}


def body(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Status object (failure)."""
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        out["details"] = details
    return out


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> web.Response:
    """A Status object as an HTTP response with the same code."""
    return web.json_response(body(code, reason, message, details), status=code)


def invalid(resource: str, name: str, errors: list[FieldError]) -> web.Response:
    """422 Invalid with one cause per field error."""
    kind = _KINDS.get(resource, resource)
    details = {"name": name, "kind": kind, "causes": [e.cause() for e in errors]}
    return status(422, "Invalid", f'{kind} "{name}" is invalid: {aggregate(errors)}', details)


def not_found(resource: str, name: str) -> web.Response:
    """404 NotFound for a named object."""
    return status(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource})


def already_exists(resource: str, name: str) -> web.Response:
    """409 AlreadyExists on create."""
    return status(
        409, "AlreadyExists", f'{resource} "{name}" already exists', {"name": name, "kind": resource}
    )


def conflict(resource: str, name: str) -> web.Response:
    """409 Conflict: the update named an older resourceVersion."""
    message = (
        f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; please apply '
        "your changes to the latest version and try again"
    )
    return status(409, "Conflict", message, {"name": name, "kind": resource})


def forbidden(resource: str, name: str, message: str) -> web.Response:
    """403 Forbidden (admission)."""
    return status(403, "Forbidden", message, {"name": name, "kind": resource})


def bad_request(message: str) -> web.Response:
    """400 BadRequest (the body could not be decoded)."""
    return status(400, "BadRequest", message)


def expired(requested: str, current: int) -> dict[str, Any]:
    """The Status in a watch ERROR event when the requested version is older than the kept history."""
    return body(410, "Expired", f"too old resource version: {requested} ({current})")
