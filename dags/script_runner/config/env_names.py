"""Which environment names a script (``env=``) or the settings (``extra_env``) may set, and why not."""

from __future__ import annotations

from script_runner.config import constants as c


def reserved_everywhere_reason(name: str) -> str | None:
    """Why ``name`` is reserved in ``env=`` and in ``extra_env`` alike, or None.

    Exact names are case-sensitive; prefixes and suffixes (``*_proxy``, ``CURL_*``) match in any case, as
    the tools that read them do.
    """
    if name in c.RESERVED_EVERYWHERE_NAMES:
        return c.RESERVED_EVERYWHERE_NAMES[name]
    upper = name.upper()
    for prefix, why in c.RESERVED_EVERYWHERE_PREFIXES.items():
        if upper.startswith(prefix):
            return f"{prefix}* {why}"
    for suffix, why in c.RESERVED_EVERYWHERE_SUFFIXES.items():
        if upper.endswith(suffix):
            return f"*{suffix} {why}"
    return None


def reserved_env_reason(name: str) -> str | None:
    """Why an ``env=`` name is reserved, or None when a script may set it.

    Exact names are case-sensitive (``path`` is not ``PATH``); prefixes are matched in any case.
    """
    if name in c.RESERVED_ENV_NAMES:
        return c.RESERVED_ENV_NAMES[name]
    upper = name.upper()
    for prefix, why in c.RESERVED_ENV_PREFIXES.items():
        if upper.startswith(prefix):
            return f"{prefix}* {why}"
    return reserved_everywhere_reason(name)


def check_extra_env(names: list[str]) -> None:
    """Refuse an ``extra_env`` name the runner keeps for itself (the value is never named: it may be secret).

    :raises ValueError: naming the variable, why, and the fix.
    """
    for name in names:
        why = reserved_everywhere_reason(name)
        if why is not None:
            raise ValueError(
                f"extra_env {name} is reserved: {why}; remove it from extra_env (configure the tool in the "
                "runner image instead, where the runner's own steps are built and tested with it)"
            )
