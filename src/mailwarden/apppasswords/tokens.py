"""The text of an app password: `<public id>-<secret>`, e.g. `k3f9q2xa-mz4...`.

The public id comes first so that Dovecot's passdb query can pick the one row to verify from
the password it was given (see stack/dovecot). Lowercase letters, digits and `-` only: the text
passes unquoted through IMAP LOGIN, SASL PLAIN and every config field a mail client offers, and
reads back unambiguously when typed on a phone.
"""

from __future__ import annotations

import base64
import re
import secrets
import string
from typing import Final

# Base32's alphabet, lowercased: no 0/1/8/9, which are easily confused with o, l, b, g.
_ALPHABET: Final = string.ascii_lowercase + "234567"
# 40 bits: collisions are looked for (and a fresh id drawn) before insert.
PUBLIC_ID_LENGTH: Final = 8
SEPARATOR: Final = "-"
# 128 bits of randomness behind the public id.
_SECRET_BYTES: Final = 16
PUBLIC_ID: Final = re.compile(f"[{_ALPHABET}]{{{PUBLIC_ID_LENGTH}}}")


def new_public_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))


def new_password(public_id: str) -> str:
    secret = base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")
    return f"{public_id}{SEPARATOR}{secret.rstrip('=').lower()}"
