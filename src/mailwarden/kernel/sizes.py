"""Sizes as people write them: `512M`, `2G`, `1.5T` (base 1024) or a plain byte count."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from mailwarden.kernel.errors import ValidationError

# The largest value a signed 64-bit BIGINT column holds; Dovecot's quota is 64-bit too.
MAX_BYTES = 2**63 - 1
_UNITS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}
_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s?(?P<unit>[KMGTP]?)(?:I?B)?", re.IGNORECASE)


def parse_size(value: str | int, field: str = "quota") -> int:
    """Bytes for a size; 0 means unlimited. Raises ValidationError naming `field`."""
    if isinstance(value, bool):
        raise ValidationError(field, "invalid_size", "expected a size such as 512M, 2G or 1048576")
    if isinstance(value, int):
        number = Decimal(value)
        unit = ""
    else:
        text = value.strip()
        if text != value or not text:
            raise ValidationError(
                field, "invalid_size", "expected a size such as 512M, 2G or 1048576"
            )
        if text.startswith("-"):
            raise ValidationError(field, "negative", "a size cannot be negative")
        match = _SIZE.fullmatch(text)
        if match is None:
            lowered = text.lower()
            if lowered in {"inf", "infinity", "nan", "+inf"}:
                raise ValidationError(field, "not_finite", "a size must be a finite number")
            raise ValidationError(
                field,
                "invalid_size",
                f"{value!r} is not a size; use a byte count or a number with K, M, G, T or P",
            )
        try:
            number = Decimal(match["number"])
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
            raise ValidationError(field, "invalid_size", f"{value!r} is not a number") from exc
        unit = match["unit"].upper()
    if number < 0:
        raise ValidationError(field, "negative", "a size cannot be negative")
    if not number.is_finite():
        raise ValidationError(field, "not_finite", "a size must be a finite number")
    total = number * (1024 ** _UNITS[unit])
    if total > MAX_BYTES:
        raise ValidationError(field, "too_large", f"a size cannot exceed {format_size(MAX_BYTES)}")
    # Non-negative, so truncation is the floor: a fraction of a byte is dropped.
    return int(total)


def format_size(size: int | None) -> str:
    """`1.5 GiB`, `512 MiB`, `0` -> `unlimited`."""
    if size is None:
        return "-"
    if size == 0:
        return "unlimited"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            if unit == "B":
                return f"{size} B"
            return f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    return f"{size} B"  # pragma: no cover
