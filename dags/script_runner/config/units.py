"""Parsing of Kubernetes quantities and human durations, with errors that say what is expected."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_DURATION_RE = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_GI = Decimal(1024**3)
# A Kubernetes quantity: a number, then a binary suffix (Ki...Ei), a decimal one (n, u, m, k or K, M...E) or
# an exponent (e3, E-2). Parsed here rather than by the kubernetes client, so that `lint` and `plan` need
# neither it nor Airflow (the `lint` extra); tests check it against the client's parser.
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|K|M|G|T|P|E)|[eE](?P<exponent>[+-]?\d+))?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "K": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_duration(value: str | int) -> int:
    """Seconds in a duration such as ``90``, ``90s``, ``30m``, ``1h30m`` or ``2d``.

    :param value: the duration; a bare number is seconds.
    :raises ValueError: on anything else, naming the accepted forms.
    """
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"duration {value!r} is negative")
        return value
    text = value.strip().lower()
    if text.isdigit():
        return int(text)
    match = _DURATION_RE.match(text)
    if not text or not match or not any(match.groupdict().values()):
        raise ValueError(f"duration {value!r} is not like 90s, 30m, 1h30m or 2d")
    return sum(int(n) * _SECONDS[unit] for unit, n in match.groupdict().items() if n)


def format_duration(seconds: int) -> str:
    """Shortest ``1h30m``-style text for a number of seconds."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_cpu(value: str) -> Decimal:
    """Cores in a Kubernetes cpu quantity (``500m``, ``2``, ``0.25``).

    :raises ValueError: when it is not a positive quantity.
    """
    cores = _quantity(value, example="500m or 2")
    if cores <= 0:
        raise ValueError(f"cpu {value!r} must be more than 0")
    return cores


def parse_bytes(value: str) -> Decimal:
    """Bytes in a Kubernetes memory/storage quantity (``512Mi``, ``1Gi``, ``1G``).

    :raises ValueError: when it is not a positive quantity, or not a whole number of bytes (``500m`` is
        500 *milli*bytes: Kubernetes accepts it, but no container can start with half a byte).
    """
    amount = _quantity(value, example="512Mi or 2Gi")
    if amount <= 0:
        raise ValueError(f"quantity {value!r} must be more than 0")
    if amount != amount.to_integral_value():
        milli = " ('m' is milli, a thousandth; mebibytes are 'Mi')" if value.strip().endswith("m") else ""
        raise ValueError(f"{value!r} is {amount.normalize():f} bytes, not a whole number of bytes{milli}")
    return amount


def format_cpu(cores: Decimal) -> str:
    """Canonical cpu text: millicores below one core or for fractions, else whole cores."""
    millis = int((cores * 1000).to_integral_value(rounding="ROUND_CEILING"))
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def format_bytes(amount: Decimal) -> str:
    """Canonical memory text in Mi (or Gi when whole), rounded up to a whole Mi."""
    mebis = int((amount / Decimal(1024**2)).to_integral_value(rounding="ROUND_CEILING"))
    return f"{mebis // 1024}Gi" if mebis % 1024 == 0 else f"{mebis}Mi"


def gibibytes(amount: Decimal) -> Decimal:
    """The amount in GiB."""
    return amount / _GI


def parse_quantity(value: str) -> Decimal:
    """The exact value of a Kubernetes quantity (``1.5Gi``, ``500m``, ``2k``, ``1e3``).

    :raises ValueError: when it is not one.
    """
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    number, suffix, exponent = match.group("number", "suffix", "exponent")
    try:
        amount = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from exc
    if suffix in _BINARY:
        return amount * Decimal(1024) ** _BINARY[suffix]
    power = _DECIMAL[suffix] if suffix else int(exponent or 0)
    return amount.scaleb(power)


def _quantity(value: str, *, example: str) -> Decimal:
    try:
        return parse_quantity(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a Kubernetes quantity like {example}") from exc
