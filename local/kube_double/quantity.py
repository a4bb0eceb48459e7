"""Resource quantities (``500m``, ``1Gi``, ``2e3``) parsed and compared the way the API server reads them."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# The pattern the API server's decoder quotes when a quantity does not parse.
QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_STRICT = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?[0-9]+)?$"
)
_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}


class QuantityError(ValueError):
    """A value that is not a quantity (the API server refuses to decode the object: 400 BadRequest)."""


def parse(value: object) -> Decimal:
    """The quantity as a number of base units.

    :param value: a JSON string or number from a resources map.
    :raises QuantityError: when it is neither.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise QuantityError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
    text = str(value).strip() if not isinstance(value, str) else value
    match = _STRICT.match(text)
    if not match:
        raise QuantityError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number) * (Decimal(10) ** int(suffix[1:]))
        return Decimal(number) * _SUFFIX[suffix]
    except (InvalidOperation, KeyError) as exc:
        raise QuantityError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'") from exc
