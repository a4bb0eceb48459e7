"""Before a pod: is the plan this task was handed one discovery would make from the current settings?

A run task builds its pod from the plan discovery pushed to XCom (the script's spec and the run's settings).
XCom is not a trust boundary: anyone who can write it, or a stale plan kept from a cleared earlier try after
the settings changed, could hand the task another image, service account, impersonated account, secret or
namespace. So before any pod request the task takes the plan's identity again through discovery's own
checks (:class:`~script_runner.discover.resolve_identity.IdentityChecks`: image allowlist, service account
allowlist and ``identity_bindings``, impersonation targets, secret prefixes) against the current settings,
read from the Variable and the environment, never from the plan, and requires the same answers; the pod's
cluster, namespace, ``extra_env`` and ``envFrom`` sources must be the current settings' too. What this adds
to a try is one Variable read and one settings model built from it (tens of microseconds); no header is
read and the spec is not validated again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from script_runner.config.compat import AirflowFailException
from script_runner.config.env_names import reserved_env_reason
from script_runner.config.settings_loader import load_settings_from_airflow
from script_runner.discover.directives import RawDirectives
from script_runner.exceptions import SettingsError
from script_runner.run.policy import Action, Outcome, Status

if TYPE_CHECKING:
    from script_runner.config.settings import RunnerSettings
    from script_runner.discover.spec import ScriptSpec

log = logging.getLogger(__name__)

# Settings that decide where the pod runs and what it is handed besides its spec: the plan's must be the
# current ones (values of extra_env may be secret: only names are ever shown).
_PLACEMENT = (
    "namespace",
    "kubernetes_conn_id",
    "config_file",
    "in_cluster",
    "cluster_context",
    "extra_env",
    "env_from_secrets",
    "env_from_config_maps",
)


def plan_problems(spec: ScriptSpec, planned: RunnerSettings, current: RunnerSettings) -> list[str]:
    """What in a script's plan discovery would not decide from the current settings (empty: it would).

    :param spec: the script's spec from the plan.
    :param planned: the settings handed over with the plan.
    :param current: the current settings (Variable and environment), or settings the DAG's code passed in.
    """
    problems = _identity_problems(spec, current)
    for name in spec.env:
        why = reserved_env_reason(name)
        if why is not None:
            problems.append(f"env={name} is reserved ({why})")
    for name in _PLACEMENT:
        ours, theirs = getattr(planned, name), getattr(current, name)
        if ours == theirs:
            continue
        if isinstance(ours, dict):  # extra_env: its values may be secret, name the variables only
            names = sorted(k for k in {*ours, *theirs} if ours.get(k) != theirs.get(k))
            problems.append(f"{name} differs from the settings' in {', '.join(names)}")
        else:
            problems.append(f"{name} is {ours!r} in the plan, {theirs!r} in the settings")
    return problems


def _identity_problems(spec: ScriptSpec, current: RunnerSettings) -> list[str]:
    """Discovery's identity checks on the plan's image, account and secrets; the same answers required."""
    # Imported here, in the task: the DAG file's parse builds none of the settings' pydantic models.
    from script_runner.discover.resolve_identity import IdentityChecks

    raw = RawDirectives(values={"image": spec.image})
    if current.identity_mode == "impersonate":
        if spec.impersonate is not None:
            raw.values["service_account"] = spec.impersonate
    elif spec.service_account is not None and spec.service_account != current.service_account:
        raw.values["service_account"] = spec.service_account
    raw.secrets = [_secret_ref(entry) for entry in spec.secrets]
    checks = IdentityChecks(spec.path, raw, current, collect=True)
    got: dict[str, Any] = {
        "image": checks.attempt(checks.image),
        "service_account": checks.attempt(checks.service_account),
        "impersonate": checks.attempt(checks.impersonate),
        "secrets": checks.attempt(checks.secrets),
    }
    problems = [f"{err.message} (discovery's fix: {err.fix})" for err in checks.errors]
    if checks.errors:
        return problems
    planned = {
        "image": spec.image,
        "service_account": spec.service_account,
        "impersonate": spec.impersonate,
        "secrets": spec.secrets,
    }
    for key, want in got.items():
        if planned[key] != want:
            problems.append(f"{key} is {planned[key]!r} in the plan; the settings give {want!r}")
    return problems


def _secret_ref(entry: str) -> tuple[str, str]:
    """A planned secret (``projects/P/secrets/S/versions/V:TARGET``) as a directive's (reference, target)."""
    resource, _, target = entry.rpartition(":")
    return (resource, target) if resource else (entry, "")


def refusal(path: str, problems: list[str]) -> str:
    """The task's error for a plan that does not match: the script, what differs, and the fix.

    :param path: the script's path.
    :param problems: :func:`plan_problems`'s answer (not empty).
    """
    return (
        f"{path}: refused before any pod was started: its plan does not match what the current settings "
        f"allow ({'; '.join(problems)}). Fix: if the settings changed since this run's discovery, start a "
        "new run (or clear the whole run, discover included) so the script is planned again from the current "
        "settings; if they did not, the run's XCom was written by something other than discovery: find out "
        "what before running it again"
    )


def task_settings(
    script: dict[str, Any], runner_settings: RunnerSettings | None
) -> tuple[RunnerSettings, bool, str | None]:
    """The settings a run task runs with: ``(settings, from_plan, error)``.

    The DAG code's own ``runner_settings`` when it passed some. Else the current settings (the Variable and
    the environment, read once here: the plan check holds the plan against these same settings, so a try
    reads the Variable once). Discovery hands over the script's spec only: the settings are not repeated in
    each of the run's XCom items, which every mapped task pulls whole. A plan discovered before that change
    (a run in flight across an upgrade) still carries them: they are used, and held against the current
    ones before the pod as before (``from_plan``). When the current settings are invalid, ``error`` says
    why and the settings are :func:`~script_runner.config.settings_loader.fallback_settings` (the preset and
    every valid environment setting, as the report uses), enough to build the task and record its refusal.

    :param script: the script's spec from the plan (XCom).
    :param runner_settings: the DAG code's settings, or None.
    """
    from script_runner.config.settings import settings_from_wire
    from script_runner.config.settings_loader import fallback_settings

    if runner_settings is not None:
        return runner_settings, False, None
    wire = script.get("settings")
    if isinstance(wire, dict):
        return settings_from_wire(wire), True, None
    try:
        return load_settings_from_airflow(), False, None
    except SettingsError as exc:
        return fallback_settings(), False, str(exc)


class ChecksPlanAgainstSettings:
    """The operator's check of its plan before the pod (a mixin of
    :class:`~script_runner.run.operator.ScriptPodOperator`)."""

    script_path: str
    script_spec: ScriptSpec
    runner_settings: RunnerSettings
    _settings_from_plan: bool  # the settings came with the plan (XCom), not from the DAG's code
    _settings_error: str | None  # the current settings could not be read (task_settings)

    if TYPE_CHECKING:  # the operator's (RecordsVerdicts)

        def _record(
            self, context: Any, outcome: Outcome, action: Action, *, extra: dict[str, Any] | None = None
        ) -> None: ...

    def _refuse_untrusted_plan(self, context: Any) -> None:
        """Fail the task, before any pod request, when the current settings would not give this plan.

        The current settings are the Variable and the environment as the task read them when it was built
        (:func:`task_settings`: one Variable read per try), never settings handed over in the plan; see
        :mod:`script_runner.run.plan_check`.
        """
        try:
            if self._settings_error is not None:
                raise SettingsError(self._settings_error)
            current = load_settings_from_airflow() if self._settings_from_plan else self.runner_settings
        except SettingsError as exc:
            raise AirflowFailException(
                f"{self.script_path}: refused before any pod was started: the current settings are invalid, "
                f"so its plan cannot be checked against them: {exc}"
            ) from None
        problems = plan_problems(self.script_spec, self.runner_settings, current)
        if not problems:
            return
        reason = refusal(self.script_path, problems)
        log.error("[runner] script=%s status=refused reason=%s", self.script_path, reason)
        if current is not self.runner_settings:  # record where the current settings keep state, not the plan
            self.runner_settings = current
            self.__dict__.pop("ledger", None)
        try:
            self._record(context, Outcome(Status.ERROR, None, reason), Action.FAIL)
        except Exception:  # the refusal stands whether or not the ledger takes it
            log.warning("could not record the refusal of %s", self.script_path, exc_info=True)
        raise AirflowFailException(reason)
