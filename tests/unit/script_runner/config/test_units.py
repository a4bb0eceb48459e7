from __future__ import annotations

import re
from decimal import Decimal

import pytest

from script_runner.config.units import parse_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("512Mi", Decimal(512 * 1024**2), id="mebibytes"),
        pytest.param("1G", Decimal(10**9), id="gigabytes"),
        pytest.param("1.5Ki", Decimal(1536), id="fraction-whole-bytes"),
        pytest.param("2000m", Decimal(2), id="milli-but-whole"),
    ],
)
def test_parse_bytes_accepts_whole_byte_quantities(text: str, expected: Decimal) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("500m", "'500m' is 0.5 bytes, not a whole number of bytes ('m' is milli", id="milli"),
        pytest.param("0.5", "'0.5' is 0.5 bytes", id="half-byte"),
        pytest.param("lots", "not a Kubernetes quantity", id="garbage"),
        pytest.param("0", "more than 0", id="zero"),
    ],
)
def test_parse_bytes_rejects_sub_byte_and_bad_quantities(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        parse_bytes(text)
