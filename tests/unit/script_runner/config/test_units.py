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


@pytest.mark.parametrize(
    "text",
    [
        "1",
        "1.5Gi",
        "500m",
        ".5",
        "5.",
        "1e3",
        "1E",
        "1E3",
        "2k",
        "1K",
        "0.1m",
        "-1",
        "+2",
        "1Ki",
        "7Ei",
        "3n",
        "4u",
    ],
)
def test_units_parse_quantity_agrees_with_the_kubernetes_client(text: str) -> None:
    from kubernetes.utils.quantity import parse_quantity as client_parse

    from script_runner.config.units import parse_quantity

    assert parse_quantity(text) == client_parse(text)


@pytest.mark.parametrize("text", ["", "1.5.2", "1Gib", "1e", "12ki", "lots", "1 G i"])
def test_units_parse_quantity_refuses_what_the_kubernetes_client_refuses(text: str) -> None:
    from script_runner.config.units import parse_quantity

    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)
