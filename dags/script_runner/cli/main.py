"""``script-runner``: check scripts (``lint``), see what a run would do (``plan``), install (``deploy``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from script_runner.cli import lint
from script_runner.config import constants as c
from script_runner.config.params import RunOptions
from script_runner.config.presets import PRESETS
from script_runner.config.settings_loader import load_settings
from script_runner.discover.dependencies import levels
from script_runner.discover.directives import KEYS
from script_runner.discover.discovery import discover
from script_runner.discover.run_scope import narrow
from script_runner.discover.schedule import Window, run_window, zone
from script_runner.discover.spec import ScriptSpec
from script_runner.exceptions import DiscoveryError, ScriptRunnerError
from script_runner.report.sizing import SizingHistory, Suggestion, platform_bend, suggest

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import datetime

    from script_runner.config.settings import RunnerSettings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 problems found, 2 usage or settings error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "deploy":
            return _deploy(args)
        with _logs_to_stderr():
            settings = _settings(args)
            if args.command == "lint":
                return _lint(args, settings)
            return _plan_command(
                settings, as_json=args.json, at=args.at, schedule=args.schedule, timezone=args.timezone
            )
    except ScriptRunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


@contextlib.contextmanager
def _logs_to_stderr() -> Iterator[None]:
    """Our log lines go to stderr, stdout stays the command's output (``plan --json`` stays JSON).

    Airflow 2's logging setup (done on ``import airflow``) sends the root logger to stdout.
    """
    logger = logging.getLogger("script_runner")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _parser() -> argparse.ArgumentParser:
    keys = "\n".join(f"  {k:18} {desc} (e.g. {example})" for k, (desc, example) in KEYS.items())
    parser = argparse.ArgumentParser(
        prog="script-runner",
        description="Check and plan the shell scripts that the gcs_script_runner DAG runs.",
        epilog=f"Header directives (# {c.DIRECTIVE_PREFIX} key=value ...):\n{keys}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="settings preset (default: $SCRIPT_RUNNER_PRESET or composer3)",
    )
    parser.add_argument(
        "--settings", metavar="JSON", help="settings as JSON (what the Airflow Variable holds)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _lint_parser(sub)
    plan = sub.add_parser("plan", help="discover the source and print what would be launched or rejected")
    plan.add_argument(
        "--source",
        help="gs://bucket/prefix/, or file:///folder/ to plan a local checkout (a run reads only gs://; "
        "file:///home/airflow/gcs/X is gs://$GCS_BUCKET/X) (default: settings)",
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument(
        "--at",
        metavar="TIME",
        help="explain which scripts are due in the scheduled run at TIME (UTC, e.g. 2026-12-07T06:00:00Z); "
        "without it every script is planned, as in a manual run",
    )
    plan.add_argument(
        "--schedule",
        default=os.environ.get(c.ENV_PREFIX + "SCHEDULE", "@daily"),
        help="the DAG's schedule, for --at (default: $SCRIPT_RUNNER_SCHEDULE or @daily)",
    )
    plan.add_argument(
        "--timezone",
        default=os.environ.get("AIRFLOW__CORE__DEFAULT_TIMEZONE", "UTC"),
        help="the DAG's time zone, for --at: its cron and every schedule= are read in it, as Airflow reads "
        "them (default: $AIRFLOW__CORE__DEFAULT_TIMEZONE or UTC)",
    )
    _settings_arguments(plan)
    _deploy_parser(sub)
    return parser


def _settings_arguments(parser: argparse.ArgumentParser) -> None:
    """``--preset``/``--settings`` after the subcommand too (pre-commit appends a hook's args at the end)."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default=argparse.SUPPRESS, help="as above")
    parser.add_argument("--settings", metavar="JSON", default=argparse.SUPPRESS, help="as above")


def _lint_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "lint",
        help="check local scripts: headers as discovery does, then shellcheck (exit 1 on problems)",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="script files or folders")
    parser.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="text (file:line: problem), json, or github (workflow annotations ::error file=...,line=...::)",
    )
    parser.add_argument(
        "--severity",
        choices=lint.SEVERITIES,
        default="style",
        help="lowest level reported: shellcheck's, and the runner's warnings (memory=1G) from warning up "
        "(default style: all)",
    )
    parser.add_argument("--no-shellcheck", action="store_true", help="check the headers only")
    _settings_arguments(parser)


def _deploy_parser(sub: Any) -> None:
    deploy = sub.add_parser(
        "deploy",
        help="check versions, upload the DAG and package to dags/, set the settings Variable",
        description="--preset and --settings (before 'deploy') are merged into the script_runner_settings "
        "Variable.",
    )
    where = deploy.add_mutually_exclusive_group(required=True)
    where.add_argument("--bucket", help="the environment's bucket, gs://BUCKET")
    where.add_argument("--environment", help="a Composer environment (gcloud composer environments describe)")
    deploy.add_argument("--location", help="the Composer environment's region")
    deploy.add_argument(
        "--project", help="the environment's project (default: gcloud's core/project; passed to gcloud)"
    )
    deploy.add_argument("--airflow-url", help="an Airflow REST API (with --bucket): versions, Variable")
    deploy.add_argument(
        "--airflow-token",
        default=os.environ.get("SCRIPT_RUNNER_AIRFLOW_TOKEN"),
        help="bearer token for --airflow-url (default $SCRIPT_RUNNER_AIRFLOW_TOKEN, else /auth/token)",
    )
    deploy.add_argument("--airflow-auth", metavar="USER:PASSWORD", help="basic auth (Airflow 2)")
    deploy.add_argument(
        "--versions",
        help="airflow=X.Y.Z,cncf-kubernetes=X.Y.Z,google=X.Y.Z, or 'local' for the Airflow installed here",
    )
    deploy.add_argument(
        "--support-table",
        type=Path,
        help="support table JSON (default: the checkout's compat/support.json, written by make compat)",
    )
    deploy.add_argument(
        "--allow-unproven",
        action="store_true",
        help="deploy to a version whose compat result is older than the DAG code (warned, not refused)",
    )
    deploy.add_argument("--image", help="the runner image (sets image in the Variable)")
    deploy.add_argument(
        "--dags-dir", type=Path, help="folder with the DAG file and package (default: this one)"
    )
    deploy.add_argument("--gcloud", default="gcloud", help="the gcloud executable")
    deploy.add_argument("--dry-run", action="store_true", help="print what would be done; write nothing")


def _deploy(args: argparse.Namespace) -> int:
    from script_runner.deploy import plan as deploy

    settings: dict[str, Any] = json.loads(args.settings) if args.settings else {}
    settings.update({k: v for k, v in (("preset", args.preset), ("image", args.image)) if v})
    request = deploy.DeployRequest(
        bucket=args.bucket,
        environment=args.environment,
        location=args.location,
        airflow_url=args.airflow_url,
        versions=args.versions,
        support_table=args.support_table,
        settings=settings,
        gcloud=args.gcloud,
        airflow_token=args.airflow_token,
        airflow_auth=args.airflow_auth,
        project=args.project,
        allow_unproven=args.allow_unproven,
        **({"dags_dir": args.dags_dir} if args.dags_dir else {}),
    )
    plan = deploy.make_plan(request)
    if args.dry_run:
        deploy.check_settings(plan)
    else:
        deploy.apply(plan)
    print("\n".join(plan.render(dry_run=args.dry_run)))
    return 0


def _settings(args: argparse.Namespace) -> RunnerSettings:
    env = dict(os.environ)
    if args.preset:
        env[c.PRESET_ENV] = args.preset
    if getattr(args, "source", None):
        env[c.ENV_PREFIX + "SOURCE"] = args.source
    if args.command == "lint" and not env.get("GCS_BUCKET") and not env.get(c.ENV_PREFIX + "SOURCE"):
        env["GCS_BUCKET"] = "lint-only"  # lint reads local files; the source is irrelevant
    if args.command == "lint" and not env.get(c.ENV_PREFIX + "IMAGE"):
        env[c.ENV_PREFIX + "IMAGE"] = "runner-image"  # the default image is always allowed
    # Planning or linting a local folder is fine: nothing runs from it (a run refuses such a source).
    return load_settings(variable=args.settings, environ=env, local_folder=True)


def _lint(args: argparse.Namespace, settings: RunnerSettings) -> int:
    """Check local files as discovery would, plus shellcheck; 1 when anything is wrong."""
    shellcheck = None if args.no_shellcheck else lint.find_shellcheck()
    results = lint.lint_paths(args.paths, settings, shellcheck=shellcheck, severity=args.severity)
    if not results:
        print("error: no scripts found", file=sys.stderr)
        return 2
    print(lint.render(results, args.format))
    return 1 if any(r.failed for r in results) else 0


def _suggestions(settings: RunnerSettings, specs: list[ScriptSpec]) -> dict[str, Suggestion]:
    """Sizing suggestions for the planned scripts, from the usage history in the state bucket."""
    bucket = settings.effective_state_bucket
    if not bucket or not specs:
        return {}
    from script_runner.discover.sources import default_client

    try:
        history = SizingHistory(default_client(), bucket=bucket, root=settings.state_root).read()
    except Exception as exc:
        print(f"note: no sizing history read from gs://{bucket} ({type(exc).__name__})", file=sys.stderr)
        return {}
    out, bend = {}, platform_bend(settings)
    for spec in specs:
        hint = suggest(history.get(spec.path, []), memory=spec.memory, cpu=spec.cpu, bend=bend)
        if hint is not None:
            out[spec.path] = hint
    return out


def _plan_command(
    settings: RunnerSettings, *, as_json: bool, at: str | None, schedule: str | None, timezone: str | None
) -> int:
    """``plan``: a settings problem that would reject every script is said once, then the scripts are
    planned without it (so their own problems show); discovery's log lines are left out (plan prints
    each rejection itself)."""
    code = 0
    if not settings.image:
        print(
            "error: settings: no runner image is configured, so a run would reject every script (fix: set "
            'SCRIPT_RUNNER_IMAGE, image in the Variable, or --settings \'{"image": "..."}\'); '
            f"planned below as {_NO_IMAGE!r}",
            file=sys.stderr,
        )
        settings, code = settings.model_copy(update={"image": _NO_IMAGE}), 2
    discovery_log = logging.getLogger("script_runner.discover.discovery")
    level = discovery_log.level
    discovery_log.setLevel(logging.ERROR)
    try:
        return max(code, _plan(settings, as_json=as_json, at=at, schedule=schedule, timezone=timezone))
    finally:
        discovery_log.setLevel(level)


_NO_IMAGE = "<no image configured>"


def _plan(
    settings: RunnerSettings, *, as_json: bool, at: str | None, schedule: str | None, timezone: str | None
) -> int:
    result = discover(settings)
    window = _at_window(at, schedule, timezone) if at else None
    narrow(result, RunOptions(), window)
    order = levels(result.specs)
    specs = [ScriptSpec.model_validate(wire) for wire in result.specs]
    hints = _suggestions(settings, specs)
    if as_json:
        print(
            json.dumps(
                {
                    "source": settings.source,
                    "launch": [ScriptSpec.model_validate(s).model_dump(mode="json") for s in result.specs],
                    "rejected": [r.model_dump(mode="json") for r in result.rejected],
                    "held": result.held,
                    "levels": order,
                    "window": window.describe() if window else None,
                    "summary": result.summary(),
                    "suggestions": {
                        path: {"directive": h.directive, "reason": h.reason} for path, h in hints.items()
                    },
                },
                indent=2,
            )
        )
        return 1 if result.rejected else 0
    print(f"source: {settings.source} (preset {settings.preset})")
    print(f"{'script':40} {'generation':>18} {'cpu':>6} {'memory':>8} {'timeout':>8} {'retries':>7}  image")
    for s in specs:
        print(
            f"{s.path:40} {s.generation:>18} {s.cpu:>6} {s.memory:>8} {s.timeout:>7}s {s.retries:>7} ",
            s.image,
        )
        for line in lint.identity_lines(s, settings):
            print(f"{'':40}   {line}")
        for note in s.notes:
            print(f"{'':40}   note: {note}")
        for w in s.warnings:
            where = f"line {w.line}: " if w.line else ""
            print(f"{'':40}   warning: {where}{w.message} (fix: {w.fix})")
        if s.path in hints:
            print(f"{'':40}   suggest: # runner: {hints[s.path].directive} ({hints[s.path].reason})")
    _print_order(result.specs, order, window)
    for h in result.held:
        print(f"{h['status'].upper()} {h['path']}: {h['reason']}")
    for r in result.rejected:
        for number, p in enumerate(r.problems()):
            where = f" line {p.line}" if p.line else ""
            head = f"REJECTED {r.path}" if number == 0 else f"{'':8} {r.path}"
            print(f"{head}{where}: {p.message} (fix: {p.fix})")
    summary = result.summary()
    print(
        f"{summary['launch']} to launch, {summary['held']} held back, {summary['rejected']} rejected, "
        f"{summary['ignored']} ignored"
    )
    return 1 if result.rejected else 0


def _at_window(at: str, schedule: str | None, timezone: str | None) -> Window | None:
    """``--at``'s window: the scheduled run at ``at`` of a DAG on ``schedule`` in ``timezone``."""
    try:
        tz = zone(timezone)
    except ValueError as exc:
        raise DiscoveryError(f"--timezone: {exc}") from exc
    try:
        return run_window(run_type="scheduled", start=None, end=None, dag_schedule=schedule, due_at=at, tz=tz)
    except ValueError as exc:
        raise DiscoveryError(f"--at {at!r} is not a time: {exc} (e.g. 2026-12-07T06:00:00Z)") from exc


def _print_order(specs: list[dict[str, Any]], order: dict[str, int], window: Window | None) -> None:
    """The run's order as levels (a level starts once the scripts it waits for succeeded) and due-ness."""
    if window is not None:
        where = "" if window.zone == "UTC" else f" (cron times in {window.zone})"
        print(f"scheduled run at {_stamp(window.end)}: schedules checked against {window.describe()}{where}")
        every = 0
        for spec in specs:
            if not spec.get("schedule"):
                every += 1
                continue
            when = window.first_time(spec["schedule"])
            print(f"  DUE {spec['path']}: schedule={spec['schedule']} at {_stamp(when)}")
        if every:
            print(f"  {every} script(s) without schedule= run in every scheduled run")
    if not order:
        return
    print("order:")
    for level in range(max(order.values()) + 1):
        names = []
        for spec in specs:
            if order[spec["path"]] == level:
                after = spec.get("after") or []
                names.append(spec["path"] + (f" (after {', '.join(after)})" if after else ""))
        print(f"  level {level}: {', '.join(names)}")


def _stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
