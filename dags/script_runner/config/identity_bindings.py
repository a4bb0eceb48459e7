"""Which folders of the source may use which identities and secrets (the ``identity_bindings`` setting).

Anyone who can write to the source decides what a script's header says, so a header alone cannot choose an
identity: the settings bind folders to the service accounts (and Secret Manager prefixes) their scripts may
name. A binding's key is a folder (``team-a/``: everything under it) or a glob over the path under the
source (``team-a/*.sh``, ``*``: ``*`` also crosses ``/``). A script gets the union of the bindings whose key
matches its path; an account it names must also be in the allowlist. Without any binding, no script may
name a service account (the allowlist alone no longer applies everywhere) and ``secret=`` is left to the
identity (every script has the same one).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

SETTING = "identity_bindings"


class IdentityBinding(BaseModel):
    """What the scripts of one folder may name: service accounts (allowlist names) and secret prefixes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_accounts: list[str] = Field(default_factory=list)
    # Prefixes of full secret names (projects/P/secrets/S...): "projects/p/secrets/team-a-" allows
    # team-a-password; "projects/p/secrets/" every secret of project p; "projects/" every secret.
    secrets: list[str] = Field(default_factory=list)

    @field_validator("secrets")
    @classmethod
    def _check_prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not prefix.startswith("projects/"):
                raise ValueError(
                    f"secret prefix {prefix!r} must be the start of a full secret name "
                    "(e.g. projects/my-project/secrets/team-a-)"
                )
        return value


@dataclass(frozen=True)
class Grant:
    """What one script may use: the service accounts and secret prefixes, with the binding keys that gave
    each (to say why)."""

    service_accounts: dict[str, str]  # account -> the binding key that allows it
    secrets: dict[str, str]  # prefix -> the binding key that allows it
    configured: bool  # whether any binding is set at all

    def account_key(self, *names: str) -> str | None:
        """The binding key that lets this script use one of ``names`` (short name or email), or None."""
        return next((self.service_accounts[n] for n in names if n in self.service_accounts), None)

    def secret_key(self, resource: str) -> str | None:
        """The binding key whose prefix covers ``resource`` (a full secret name), or None."""
        return next((k for p, k in self.secrets.items() if resource.startswith(p)), None)


def binding_matches(key: str, path: str) -> bool:
    """Whether a binding's key covers a script path (a folder ``a/`` covers everything under it).

    :param key: the binding's key (a folder ending with ``/``, or a glob).
    :param path: the script's path under the source.
    """
    if key.endswith("/"):
        return path.startswith(key)
    return fnmatch.fnmatchcase(path, key)


def grant_for(bindings: dict[str, IdentityBinding], path: str) -> Grant:
    """The union of the bindings that cover ``path``.

    :param bindings: the ``identity_bindings`` setting.
    :param path: the script's path under the source.
    """
    accounts: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for key in sorted(bindings, key=lambda k: (-len(k), k)):  # the most specific key names the reason
        if binding_matches(key, path):
            for name in bindings[key].service_accounts:
                accounts.setdefault(name, key)
            for prefix in bindings[key].secrets:
                secrets.setdefault(prefix, key)
    return Grant(service_accounts=accounts, secrets=secrets, configured=bool(bindings))
