"""The codes of the second factor: TOTP codes (RFC 6238, via pyotp) and recovery codes.

Pure functions, no database: the service decides what a matching code means.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Final

import pyotp

RECOVERY_CODE_COUNT: Final = 10
# Crockford's base32 in lower case: no i, l, o or u, so nothing reads as something else, and
# 32 symbols make 10 of them exactly 50 random bits.
RECOVERY_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"
_RECOVERY_LENGTH: Final = 10
_RECOVERY_GROUP: Final = 5
# What people read a lookalike as; Crockford's decoding rules.
_LOOKALIKES: Final = str.maketrans({"o": "0", "i": "1", "l": "1"})
_RECOVERY_SHAPE: Final = re.compile(f"[{RECOVERY_ALPHABET}]{{{_RECOVERY_LENGTH}}}", re.ASCII)
_TOTP_SHAPE: Final = re.compile(r"[0-9]{6}", re.ASCII)
# Nobody types more than this; longer input is refused before any work is spent on it.
_MAX_INPUT: Final = 64
# Steps either side of now that still count: clocks drift, people type slowly.
TOTP_WINDOW: Final = 1


def new_recovery_code() -> str:
    """A fresh recovery code, `xxxxx-xxxxx`."""
    symbols = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
    return f"{symbols[:_RECOVERY_GROUP]}-{symbols[_RECOVERY_GROUP:]}"


def _compact(text: str) -> str | None:
    """`text` without spaces and dashes, or None when it is too long or not ASCII."""
    # Refuse non-ASCII before lower(): it maps lookalikes such as the Kelvin sign to ASCII.
    if len(text) > _MAX_INPUT or not text.isascii():
        return None
    return re.sub(r"[\s-]", "", text)


def normalize_recovery_code(text: str) -> str | None:
    """The canonical form of a typed recovery code (10 symbols, no dash), or None."""
    compact = _compact(text)
    if compact is None:
        return None
    canonical = compact.lower().translate(_LOOKALIKES)
    return canonical if _RECOVERY_SHAPE.fullmatch(canonical) else None


def hash_recovery_code(canonical: str) -> str:
    """What is stored of a recovery code: 50 random bits need no slow hash."""
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def normalize_totp(text: str) -> str | None:
    """A typed TOTP code as its six ASCII digits (spaces and dashes dropped), or None."""
    compact = _compact(text)
    if compact is None or not _TOTP_SHAPE.fullmatch(compact):
        return None
    return compact


def matching_step(
    secret: str, code: str, *, after_step: int, now: float | None = None
) -> int | None:
    """The time step whose code `code` is, within TOTP_WINDOW of now and later than
    `after_step` (a code is good once), or None.

    pyotp's verify() answers yes or no; replay protection needs the step, so the window is
    walked here with pyotp's own code generation.
    """
    digits = normalize_totp(code)
    if digits is None:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(time.time() if now is None else now)
    matched: int | None = None
    # Every candidate is compared, so timing does not tell which step matched.
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(digits, totp.generate_otp(step)) and step > after_step:
            matched = step
    return matched


def new_secret() -> str:
    """A fresh TOTP secret in base32, as authenticator apps take it."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)
