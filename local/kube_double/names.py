"""The API server's string rules (RFC 1123 names, qualified names, label values), with its own messages."""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63

_LABEL_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = _LABEL_FMT + r"(\." + _LABEL_FMT + r")*"
_QNAME_FMT = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_VALUE_FMT = r"(" + _QNAME_FMT + r")?"
_ENV_FMT = r"[-._a-zA-Z][-._a-zA-Z0-9]*"

_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    f"and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    f"'{_LABEL_FMT}')"
)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    f"start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{_SUBDOMAIN_FMT}')"
)
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    f"character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{_QNAME_FMT}')"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    f"for validation is '{_VALUE_FMT}')"
)
_ENV_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and "
    "must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
    f"validation is '{_ENV_FMT}')"
)


def _full(fmt: str) -> re.Pattern[str]:
    return re.compile("^" + fmt + "$")


_LABEL_RE, _SUBDOMAIN_RE, _QNAME_RE, _VALUE_RE, _ENV_RE = map(
    _full, (_LABEL_FMT, _SUBDOMAIN_FMT, _QNAME_FMT, _VALUE_FMT, _ENV_FMT)
)


def _too_long(limit: int) -> str:
    return f"must be no more than {limit} characters"


def dns1123_label(value: str) -> list[str]:
    """What is wrong with ``value`` as an RFC 1123 label (container, volume, namespace names); [] if valid."""
    errs = [_too_long(DNS1123_LABEL_MAX)] if len(value) > DNS1123_LABEL_MAX else []
    return errs + ([] if _LABEL_RE.match(value) else [_LABEL_MSG])


def dns1123_subdomain(value: str) -> list[str]:
    """What is wrong with ``value`` as an RFC 1123 subdomain (pod and service account names)."""
    errs = [_too_long(DNS1123_SUBDOMAIN_MAX)] if len(value) > DNS1123_SUBDOMAIN_MAX else []
    return errs + ([] if _SUBDOMAIN_RE.match(value) else [_SUBDOMAIN_MSG])


def qualified_name(value: str) -> list[str]:
    """What is wrong with ``value`` as a label or annotation key (``[prefix/]name``)."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name "
            + _QNAME_MSG
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errs: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + msg for msg in dns1123_subdomain(prefix)]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + _too_long(QUALIFIED_NAME_MAX))
    if name and not _QNAME_RE.match(name):
        errs.append("name part " + _QNAME_MSG)
    return errs


def label_value(value: str) -> list[str]:
    """What is wrong with ``value`` as a label value (at most 63 characters, may be empty)."""
    errs = [_too_long(LABEL_VALUE_MAX)] if len(value) > LABEL_VALUE_MAX else []
    return errs + ([] if _VALUE_RE.match(value) else [_VALUE_MSG])


def env_var_name(value: str) -> list[str]:
    """What is wrong with ``value`` as an environment variable name."""
    return [] if _ENV_RE.match(value) else [_ENV_MSG]
