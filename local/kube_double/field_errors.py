"""Field errors (``field.ErrorList`` in the API server) and how they read in a Status body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Error type -> (the words the message starts with, the cause reason in Status.details.causes).
_TYPES = {
    "Invalid": ("Invalid value", "FieldValueInvalid"),
    "Required": ("Required value", "FieldValueRequired"),
    "Duplicate": ("Duplicate value", "FieldValueDuplicate"),
    "NotSupported": ("Unsupported value", "FieldValueNotSupported"),
    "Forbidden": ("Forbidden", "FieldValueForbidden"),
    "TooLong": ("Too long", "FieldValueTooLong"),
    "NotFound": ("Not found", "FieldValueNotFound"),
}
_WITH_VALUE = {"Invalid", "Duplicate", "NotSupported", "NotFound"}


def _show(value: Any) -> str:
    """A value as Go's %v/%q prints it in field errors: strings quoted, numbers bare."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: its path (``spec.containers[0].name``), type, bad value and detail."""

    type: str
    field: str
    value: Any = None
    detail: str = ""

    def body(self) -> str:
        """The message without the field path (the cause message)."""
        words = _TYPES[self.type][0]
        text = f"{words}: {_show(self.value)}" if self.type in _WITH_VALUE else words
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def cause(self) -> dict[str, str]:
        """The entry in Status.details.causes."""
        return {"reason": _TYPES[self.type][1], "message": self.body(), "field": self.field}


def invalid(path: str, value: Any, detail: str) -> FieldError:
    """A value that breaks a rule."""
    return FieldError("Invalid", path, value, detail)


def required(path: str, detail: str = "") -> FieldError:
    """A missing value."""
    return FieldError("Required", path, None, detail)


def not_supported(path: str, value: Any, allowed: list[str]) -> FieldError:
    """A value outside a fixed set."""
    return FieldError(
        "NotSupported", path, value, "supported values: " + ", ".join(json.dumps(a) for a in allowed)
    )


def aggregate(errors: list[FieldError]) -> str:
    """The errors joined as the API server joins them (one bare, several in brackets)."""
    texts = [str(e) for e in errors]
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
