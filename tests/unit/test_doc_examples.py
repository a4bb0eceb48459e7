"""Every documented example script passes `script-runner lint` and `plan` (issue 27).

A documented script is a ```bash block of the README or a guide whose first line is a shebang, and every
file of examples/data/ (but bad_directive.sh, rejected on purpose). A script whose header comment names its
path (``# etl/load.sh: ...``) is placed there; the scripts an ``after=`` waits for are stood in by empty
ones when no example provides them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from script_runner.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = ROOT / "examples" / "data"
MEANT_TO_FAIL = {"bad_directive.sh"}
_BLOCK = re.compile(r"^```bash\n(#!.*?)^```", re.MULTILINE | re.DOTALL)
_NAMED = re.compile(r"^# ([\w./-]+\.sh):", re.MULTILINE)
_AFTER = re.compile(r"after=(\S+)")
# A pod fetches only its own script into an empty work dir: another script of the folder is not there.
_SIBLING = re.compile(
    r"(?:^|[\s;&|(])(?:\./|(?:bash|sh|source|\.)\s+(?!\"?\$RUNNER_LIB)\S*\.sh\b)", re.MULTILINE
)


def documented_scripts() -> list[tuple[str, str, str]]:
    """(id, path to place it at, text) of every script block in the docs."""
    out = []
    for doc in DOCS:
        for number, match in enumerate(_BLOCK.finditer(doc.read_text()), start=1):
            text = match.group(1)
            named = _NAMED.search(text)
            path = named.group(1) if named else f"{doc.stem}_{number}.sh"
            out.append((f"{doc.relative_to(ROOT)}#{number}", path, text))
    return out


def example_scripts() -> list[tuple[str, str, str]]:
    return [
        (f"examples/data/{p.relative_to(EXAMPLES)}", str(p.relative_to(EXAMPLES)), p.read_text())
        for p in sorted(EXAMPLES.rglob("*.sh"))
        if p.name not in MEANT_TO_FAIL
    ]


SCRIPTS = documented_scripts() + example_scripts()


def _place(folder: Path, path: str, text: str) -> Path:
    target = folder / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    for patterns in _AFTER.findall(text):
        for pattern in patterns.split(","):
            stand_in = folder / pattern.replace("*", "a")
            if not stand_in.exists():
                stand_in.parent.mkdir(parents=True, exist_ok=True)
                stand_in.write_text("#!/usr/bin/env bash\ntrue\n")
    return target


def test_doc_examples_are_found() -> None:
    ids = [i for i, _, _ in SCRIPTS]
    assert any(i.startswith("README.md#") for i in ids), "the README's example script is a ```bash block"
    assert any(i.startswith("docs/author-guide.md#") for i in ids)
    assert any(i.startswith("examples/data/") for i in ids)


@pytest.mark.parametrize(("path", "text"), [pytest.param(p, t, id=i) for i, p, t in SCRIPTS])
def test_doc_examples_pass_lint_and_plan(
    path: str, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not _SIBLING.search(body), "calls another file: a pod has only its own script, in an empty dir"
    _place(tmp_path, path, text)
    monkeypatch.chdir(tmp_path)  # as pre-commit runs lint: at the root of the scripts' tree, files by path
    assert main(["lint", "--preset", "local", path]) == 0, capsys.readouterr().out
    capsys.readouterr()
    assert main(["plan", "--preset", "local", "--source", tmp_path.as_uri() + "/"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "REJECTED" not in out
    assert path in out


def test_doc_examples_the_deliberate_bad_one_fails(tmp_path: Path) -> None:
    for name in MEANT_TO_FAIL:
        script = _place(tmp_path, name, (EXAMPLES / name).read_text())
        assert main(["lint", "--preset", "local", "--no-shellcheck", str(script)]) == 1
