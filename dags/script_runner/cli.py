"""``script-runner``: check scripts before uploading (``lint``), see what a run would do (``plan``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from script_runner import constants as c
from script_runner.content import header_text
from script_runner.directives import KEYS, parse_directives
from script_runner.discovery import discover
from script_runner.exceptions import DirectiveError, ScriptRunnerError
from script_runner.selection import Selector, parse_runnerignore
from script_runner.settings import PRESETS, load_settings
from script_runner.spec import ScriptObject, ScriptSpec, resolve_all

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from script_runner.settings import RunnerSettings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 problems found, 2 usage or settings error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        with _logs_to_stderr():
            settings = _settings(args)
            if args.command == "lint":
                return _lint(args.paths, settings)
            return _plan(settings, as_json=args.json)
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
    lint = sub.add_parser("lint", help="validate the headers of local script files")
    lint.add_argument("paths", nargs="+", type=Path, help="script files or folders")
    plan = sub.add_parser("plan", help="discover the source and print what would be launched or rejected")
    plan.add_argument(
        "--source",
        help="gs://bucket/prefix/, or file:///folder/ to plan a local checkout (a run reads only gs://; "
        "file:///home/airflow/gcs/X is gs://$GCS_BUCKET/X) (default: settings)",
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    return parser


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


def _lint(paths: list[Path], settings: RunnerSettings) -> int:
    """Check local files as discovery would: same selection, same content checks, every problem shown."""
    targets = _lint_targets(paths, settings)
    if not targets:
        print("error: no scripts found", file=sys.stderr)
        return 2
    checked = problems = ignored = 0
    named_but_ignored = False
    for path, skipped, named in targets:
        if skipped is not None:
            ignored += 1
            named_but_ignored = named_but_ignored or named
            print(f"{path}: ignored: {skipped}")
            continue
        checked += 1
        spec, errors = _check_file(path, settings)
        if spec is None:
            problems += 1
            for err in errors:
                print(err)
            continue
        notes = f" ({'; '.join(spec.notes)})" if spec.notes else ""
        print(
            f"{path}: ok cpu={spec.cpu} memory={spec.memory} timeout={spec.timeout}s",
            f"retries={spec.retries}{notes}",
        )
    print(f"{checked} script(s), {problems} with problems" + (f", {ignored} ignored" if ignored else ""))
    # A file named on the command line that discovery would never run is a mistake worth failing on.
    return 1 if problems or named_but_ignored else 0


def _lint_targets(paths: list[Path], settings: RunnerSettings) -> list[tuple[Path, str | None, bool]]:
    """(file, why discovery would skip it or None, named on the command line) for every file to report.

    A folder is walked like a source (its ``.runnerignore`` included); skipped files are reported only when
    they look like scripts (``*.sh``).
    """
    out: dict[Path, tuple[Path, str | None, bool]] = {}
    for given in paths:
        if given.is_dir():
            ignore_file = given / c.RUNNERIGNORE
            ignore = parse_runnerignore(ignore_file.read_text() if ignore_file.is_file() else None)
            pick = Selector(settings.include, settings.exclude + ignore)
            for path in sorted(p for p in given.rglob("*") if p.is_file()):
                why = pick.reason(path.relative_to(given).as_posix())
                if why is None or path.name.endswith(".sh"):
                    out.setdefault(path, (path, why, False))
        else:
            why = Selector(settings.include, settings.exclude).reason(given.name)
            out[given] = (given, why, True)
    return sorted(out.values(), key=lambda t: str(t[0]))


def _check_file(path: Path, settings: RunnerSettings) -> tuple[ScriptSpec | None, list[DirectiveError]]:
    """Every problem of one local script (content, directives, settings), or its spec."""
    obj = ScriptObject(path=str(path), uri=path.resolve().as_uri())
    try:
        with path.open("rb") as handle:
            data = handle.read(settings.max_header_bytes)
        text = header_text(str(path), data, size=path.stat().st_size)
    except OSError as exc:
        return None, [DirectiveError(script=str(path), line=None, message=str(exc), fix="check the path")]
    except DirectiveError as err:
        return None, [err]
    errors: list[DirectiveError] = []
    raw = parse_directives(str(path), text, errors=errors)
    spec, more = resolve_all(obj, raw, settings)
    errors = sorted(errors + more, key=lambda e: e.line or 0)
    return (None if errors else spec), errors


def _plan(settings: RunnerSettings, *, as_json: bool) -> int:
    result = discover(settings)
    if as_json:
        print(
            json.dumps(
                {
                    "source": settings.source,
                    "launch": [ScriptSpec.model_validate(s).model_dump(mode="json") for s in result.specs],
                    "rejected": [r.model_dump(mode="json") for r in result.rejected],
                    "summary": result.summary(),
                },
                indent=2,
            )
        )
        return 1 if result.rejected else 0
    print(f"source: {settings.source} (preset {settings.preset})")
    print(f"{'script':40} {'generation':>18} {'cpu':>6} {'memory':>8} {'timeout':>8} {'retries':>7}  image")
    for s in (ScriptSpec.model_validate(wire) for wire in result.specs):
        print(
            f"{s.path:40} {s.generation:>18} {s.cpu:>6} {s.memory:>8} {s.timeout:>7}s {s.retries:>7} ",
            s.image,
        )
        for note in s.notes:
            print(f"{'':40}   note: {note}")
    for r in result.rejected:
        where = f" line {r.line}" if r.line else ""
        print(f"REJECTED {r.path}{where}: {r.reason} (fix: {r.fix})")
    summary = result.summary()
    print(f"{summary['launch']} to launch, {summary['rejected']} rejected, {summary['ignored']} ignored")
    return 1 if result.rejected else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
