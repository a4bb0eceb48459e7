"""Resolving who a script runs as and what it may reach: ``image=``, ``service_account=``, ``secret=``
and ``needs=``.

The image and the service account are held to the settings' allowlists (``identity_mode`` decides whether
a service account names a Kubernetes one or a Google one to impersonate); secrets become full Secret
Manager resource names with their target, and ``needs=`` are checked for form.
"""

from __future__ import annotations

import fnmatch
import json
import re
from functools import cached_property

from script_runner.config.identity_bindings import SETTING, Grant, grant_for
from script_runner.config.settings import SECRET_RESOURCE
from script_runner.discover.resolve_core import ResolverCore

_SA_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NEEDS = re.compile(r"^(gs://[a-z0-9][-a-z0-9_.]*(/\S*)?|bq:(?:[\w.-]+:)?[\w.-]+:[\w.-]+):(read|write)$")


class IdentityChecks(ResolverCore):
    """image, service account (or impersonation target), secrets and needs."""

    def image(self) -> str:
        default = self.s.image or ""
        image = self.value("image", default)
        if not image:
            raise self.fail(
                "image",
                "no runner image is configured",
                "set SCRIPT_RUNNER_IMAGE (or image in the Variable) to your runner image",
            )
        if image != default and not any(fnmatch.fnmatchcase(image, p) for p in self.s.image_allowlist):
            allowed = ", ".join(self.s.image_allowlist) or "none: only the default image"
            raise self.fail(
                "image",
                f"image {image!r} is not in the image allowlist ({allowed})",
                "use the default image or add a pattern to image_allowlist in the settings",
            )
        return image

    def service_account(self) -> str | None:
        """The pod's Kubernetes service account (ksa mode: the directive's; impersonate: the setting's)."""
        name = self.raw.values.get("service_account")
        if name is None or self.s.identity_mode == "impersonate":
            return self.s.service_account
        if self.s.composer3_rules:
            raise self.fail(
                "service_account",
                f"service_account={name}: Cloud Composer 3 has no custom Kubernetes service accounts",
                "remove the directive: pods run as the environment's service account; grant it what "
                "the script needs",
            )
        if not _SA_NAME.match(name) or len(name) > 253:
            raise self.fail(
                "service_account",
                f"service_account {name!r} is not a Kubernetes name",
                "use lower-case letters, digits and '-'",
            )
        if name != self.s.service_account and name not in self.s.service_account_allowlist:
            allowed = ", ".join(self.s.service_account_allowlist) or "none"
            raise self.fail(
                "service_account",
                f"service account {name!r} is not allowed (allowed: {allowed})",
                "use an allowed service account or add it to service_account_allowlist",
            )
        if name != self.s.service_account:
            self._bound(name)
        return name

    @cached_property
    def grant(self) -> Grant:
        """What the identity_bindings setting lets this script's folder use."""
        return grant_for(self.s.identity_bindings, self.script)

    def _bound(self, *names: str) -> None:
        """Raise unless a binding of this script's folder allows one of ``names`` (short name, email)."""
        if self.grant.account_key(*names) is not None:
            return
        name = names[0]
        example = json.dumps({_folder(self.script): {"service_accounts": [name]}})
        if not self.grant.configured:
            raise self.fail(
                "service_account",
                f"service_account={name}: no folder is bound to a service account ({SETTING} is not set), "
                "and an allowlisted account is no longer open to every script: anyone who can upload to "
                "the source could take it",
                f"bind the folders that may use it in the {SETTING} setting, e.g. {example}",
            )
        allowed = ", ".join(sorted(self.grant.service_accounts)) or "none"
        raise self.fail(
            "service_account",
            f"service_account={name}: this script's folder may not use it ({SETTING} allows it here: "
            f"{allowed})",
            f"move the script into a folder bound to {name}, or bind this folder in {SETTING} "
            f"(e.g. {example}) if its authors may act as {name}",
        )

    def impersonate(self) -> str | None:
        """identity_mode=impersonate: the email of the Google service account the script runs as."""
        name = self.raw.values.get("service_account")
        if name is None or self.s.identity_mode != "impersonate":
            return None
        targets = self.s.impersonation_targets()
        if name not in targets:
            allowed = ", ".join(k for k in targets if "@" not in k) or "none"
            raise self.fail(
                "service_account",
                f"service account {name!r} is not allowed to be impersonated (allowed: {allowed})",
                "use an allowed service account or add it to service_account_allowlist "
                '(a map short name -> email, e.g. {"loader": "loader@my-project.iam.gserviceaccount.com"})',
            )
        email = targets[name]
        self._bound(name, email, *(k for k, v in targets.items() if v == email))
        return email

    def secrets(self) -> list[str]:
        """secret= directives as full resource names with their target, checked against the settings."""
        out: list[str] = []
        seen_targets: dict[str, str] = {}
        for ref, target in self.raw.secrets:
            resource = self.s.secrets.get(ref, ref)
            match = SECRET_RESOURCE.match(resource)
            if match is None:
                known = ", ".join(self.s.secrets) or "none"
                raise self.fail(
                    "secret",
                    f"secret {ref!r} is neither projects/P/secrets/S[/versions/V] nor a name in the "
                    f"secrets setting (known: {known})",
                    "write the full name, e.g. secret=projects/my-project/secrets/db-password:PGPASSWORD, "
                    "or add the short name to the secrets setting",
                )
            if match.group(3) is None:
                resource += "/versions/latest"
            self._secret_bound(ref, resource)
            key = f"file:{match.group(2)}" if target == "file" else target
            if key in seen_targets or (target != "file" and target in self.raw.env):
                raise self.fail(
                    "secret",
                    f"secret {ref!r}: {target if target != 'file' else 'file ' + match.group(2)} is "
                    "already set by another secret= or env= directive",
                    "give each secret its own variable (or file)",
                )
            seen_targets[key] = resource
            out.append(f"{resource}:{target}")
        return out

    def _secret_bound(self, ref: str, resource: str) -> None:
        """With identity_bindings set, a secret must be under a prefix bound to this script's folder."""
        if not self.grant.configured or self.grant.secret_key(resource) is not None:
            return
        allowed = ", ".join(sorted(self.grant.secrets)) or "none"
        prefix = resource.rsplit("/versions/", 1)[0]
        example = json.dumps({_folder(self.script): {"secrets": [prefix]}})
        raise self.fail(
            "secret",
            f"secret={ref}: this script's folder may not read {prefix} (secret prefixes {SETTING} "
            f"allows here: {allowed})",
            f"move the script into a folder bound to that secret, or add a prefix to this folder's binding "
            f"in {SETTING} (e.g. {example})",
        )

    def needs(self) -> list[str]:
        for need in self.raw.needs:
            if not _NEEDS.match(need):
                raise self.fail(
                    "needs",
                    f"needs {need!r} is not gs://bucket/prefix:read|write or bq:project:dataset:read|write",
                    "write needs=gs://my-bucket/out/:write",
                )
        return list(self.raw.needs)


def _folder(path: str) -> str:
    """The folder of a script path as a binding key (``team-a/``), or ``*`` for a script at the root."""
    return path.rsplit("/", 1)[0] + "/" if "/" in path else "*"
