from __future__ import annotations

import pytest

from script_runner.discover.content import header_text
from script_runner.exceptions import DirectiveError

LIMIT = 8192


def _read(script: bytes) -> tuple[bytes, int]:
    return script[:LIMIT], len(script)


def test_content_directive_cut_by_the_header_read_is_refused() -> None:
    head = b"#!/bin/bash\n# " + b"x" * 8162 + b"\n"
    data, size = _read(head + b"# runner: memory=1Gi cpu=1\necho hi\n")
    with pytest.raises(DirectiveError) as info:
        header_text("etl/load.sh", data, size=size)
    err = info.value
    assert (err.script, err.line) == ("etl/load.sh", 3)
    assert "cut by the header read at byte 8192" in err.message
    assert "raise max_header_bytes in the settings above 8192" in err.fix


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"# a long comment that goes on\n", id="comment"),
        pytest.param(b"echo " + b"y" * 100 + b"\n", id="command"),
    ],
)
def test_content_cut_line_that_is_no_directive_is_fine(tail: bytes) -> None:
    head = b"#!/bin/bash\n# runner: cpu=1\n# " + b"x" * 8150 + b"\n"
    data, size = _read(head + tail + b"echo hi\n")
    assert size > LIMIT
    assert header_text("etl/load.sh", data, size=size).startswith("#!/bin/bash\n# runner: cpu=1")


def test_content_directive_after_the_first_command_is_not_the_header() -> None:
    head = b"#!/bin/bash\nset -e\n# " + b"x" * 8160 + b"\n"
    data, size = _read(head + b"# runner: memory=1Gi\n")
    header_text("etl/load.sh", data, size=size)
