"""The example run (what `make demo` shows) on the local stack with the real scheduler."""

from __future__ import annotations

from typing import Any

import pytest

from local import demo


def test_examples_run_in_parallel_and_end_as_documented(
    stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo.run_demo(stack, timeout=300)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "| bad_directive.sh | rejected |" in out
    assert "| flaky_exit3.sh | failed | 2 |" in out
    assert "peak parallelism:" in out
