"""Resource quantities read as the API server reads them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from local.kube_double import quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("500m", Decimal("0.5"), id="milli"),
        pytest.param(".5", Decimal("0.5"), id="leading-dot"),
        pytest.param("1.5Gi", Decimal(3 * 2**29), id="binary-fraction"),
        pytest.param("2e3", Decimal(2000), id="exponent"),
        pytest.param("1k", Decimal(1000), id="decimal-si"),
        pytest.param(3, Decimal(3), id="json-number"),
        pytest.param("-1", Decimal(-1), id="negative-parses"),
    ],
)
def test_quantity_parses_what_the_api_server_accepts(text: object, value: Decimal) -> None:
    assert quantity.parse(text) == value


@pytest.mark.parametrize("text", ["lots", "1Gb", "1 Gi", "", "1.2.3", "Mi", True])
def test_quantity_refuses_what_the_api_server_cannot_decode(text: object) -> None:
    with pytest.raises(quantity.QuantityError, match="quantities must match the regular expression"):
        quantity.parse(text)
