"""Which files under the source are scripts: the include/exclude globs, ``.runnerignore`` and the hidden-file
rule. Discovery and ``script-runner lint`` both decide with this module, so they always agree.
"""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


def parse_runnerignore(text: str | None) -> list[str]:
    """Exclude globs from a ``.runnerignore`` file: one per line, ``#`` comments and blank lines skipped.

    :param text: the file's content (None or empty when there is no file).
    """
    if not text:
        return []
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def is_hidden(path: str) -> bool:
    """Whether a file or one of its folders is hidden (its name starts with ``.``)."""
    return path.startswith(".") or "/." in path


class Selector:
    """include/exclude globs compiled once (fnmatch per path and pattern is the slow part at 10 000s).

    A path is selected when it matches an include glob, neither it nor a folder of it is hidden, and no
    exclude glob matches it: ``dir/`` excludes a folder; other globs match the whole path or the file name.
    """

    def __init__(self, include: Iterable[str], exclude: Iterable[str]) -> None:
        self.include_globs = list(include)
        self.exclude_globs = list(exclude)
        self._include = _either(fnmatch.translate(p) for p in self.include_globs)
        dirs = [p for p in self.exclude_globs if p.endswith("/")]
        files = [p for p in self.exclude_globs if not p.endswith("/")]
        self._dir_prefixes = tuple(dirs)
        self._exclude = _either(
            [*(fnmatch.translate(p + "*") for p in dirs), *(fnmatch.translate(p) for p in files)]
        )
        self._exclude_name = _either(fnmatch.translate(p) for p in files)

    def __call__(self, path: str) -> bool:
        if is_hidden(path) or path.endswith("/") or self._include is None:
            return False
        if not self._include.match(path):
            return False
        if self._dir_prefixes and path.startswith(self._dir_prefixes):
            return False
        if self._exclude is not None and self._exclude.match(path):
            return False
        name = path.rsplit("/", 1)[-1]
        return not (self._exclude_name is not None and self._exclude_name.match(name))

    def reason(self, path: str) -> str | None:
        """Why a path is not selected (None when it is): what ``lint`` prints for a skipped file.

        :param path: the path relative to the source.
        """
        if self(path):
            return None
        if is_hidden(path):
            return "hidden file (its name or a folder's starts with '.'): never run; rename it to run it"
        if path.endswith("/"):
            return "a folder placeholder, not a script"
        if self._include is None or not self._include.match(path):
            return f"not matched by the include globs ({', '.join(self.include_globs) or 'none'})"
        name = path.rsplit("/", 1)[-1]
        for glob in self.exclude_globs:
            if glob.endswith("/"):
                hit = path.startswith(glob) or fnmatch.fnmatchcase(path, glob + "*")
            else:
                hit = fnmatch.fnmatchcase(path, glob) or fnmatch.fnmatchcase(name, glob)
            if hit:
                return f"excluded by {glob!r} (exclude setting or .runnerignore)"
        return "excluded"


def _either(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = list(patterns)
    return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None
