"""Free text (names, descriptions, search terms, filters): any Unicode but control characters.

A NUL cannot be stored by PostgreSQL and is silently kept by the others; other control
characters break log lines, tables and generated files. Rejected here, once, for every face.
"""

from __future__ import annotations

import unicodedata

from mailwarden.kernel.addresses import describe_character
from mailwarden.kernel.errors import ValidationError

_KEPT_IN_MULTILINE = frozenset("\n\t")


def check_text(value: str, field: str, *, multiline: bool = False) -> str:
    """`value` unchanged, or ValidationError naming the first control character in it."""
    for character in value:
        # Cc: C0 and C1 controls and DEL; Cs: lone surrogates, which no database can store.
        if unicodedata.category(character) in ("Cc", "Cs") and not (
            multiline and character in _KEPT_IN_MULTILINE
        ):
            raise ValidationError(
                field, "control_character", f"contains {describe_character(character)}"
            )
    return value
