"""Mailbox password hashes in the exact layouts Dovecot 2.3 reads.

Every hash written here carries its ``{SCHEME}`` prefix and a fresh random salt, and uses
Dovecot's own default cost parameters, so Dovecot verifies it at the speed an administrator
expects and ``doveadm pw -t`` accepts it unchanged. Verification also covers the older schemes
that show up in imported databases, but those are never written.

Implementations are the ones Dovecot itself links against where possible (libxcrypt for the
crypt(3) family, libsodium for Argon2), so that a hash which verifies here verifies in Dovecot.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import string
import warnings
from collections.abc import Callable
from enum import StrEnum
from typing import Final, cast

import nacl.exceptions
import nacl.pwhash

from mailwarden.kernel.errors import ValidationError

__all__ = [
    "DEFAULT_SCHEME",
    "WRITABLE_SCHEMES",
    "Scheme",
    "check_password_policy",
    "generate_password",
    "hash_password",
    "needs_rehash",
    "parse_scheme",
    "scheme_of",
    "verify_password",
]


class Scheme(StrEnum):
    """Password schemes by their Dovecot names (the text between the braces)."""

    SHA512_CRYPT = "SHA512-CRYPT"
    SHA256_CRYPT = "SHA256-CRYPT"
    BLF_CRYPT = "BLF-CRYPT"
    ARGON2ID = "ARGON2ID"
    ARGON2I = "ARGON2I"
    PBKDF2 = "PBKDF2"
    # Verify-only, so that imported databases keep working. Never written: SSHA* is a single
    # fast digest, MD5-CRYPT is long broken, and CRYPT means whatever the local crypt(3) makes.
    SSHA512 = "SSHA512"
    SSHA256 = "SSHA256"
    MD5_CRYPT = "MD5-CRYPT"
    CRYPT = "CRYPT"


WRITABLE_SCHEMES: Final[frozenset[Scheme]] = frozenset(
    {
        Scheme.SHA512_CRYPT,
        Scheme.SHA256_CRYPT,
        Scheme.BLF_CRYPT,
        Scheme.ARGON2ID,
        Scheme.ARGON2I,
        Scheme.PBKDF2,
    }
)
DEFAULT_SCHEME: Final = Scheme.SHA512_CRYPT

# Dovecot's defaults (doveadm pw without -r). Writing anything cheaper would make our hashes the
# weak spot of the installation; writing anything dearer would slow every IMAP login.
_SHA_CRYPT_ROUNDS: Final = 5000
_BCRYPT_COST: Final = 5
_ARGON2_OPSLIMIT: Final = 3
_ARGON2_MEMORY_KIB: Final = 64 * 1024
_PBKDF2_ROUNDS: Final = 5000

# bcrypt silently ignores everything after byte 72, and libxcrypt refuses passphrases of 512
# bytes or more (CRYPT_MAX_PASSPHRASE_SIZE, which counts the NUL). Dovecot 2.3.19 does not check
# the latter and stores the failure token "{SHA512-CRYPT}*0"; we refuse instead.
_BCRYPT_MAX_BYTES: Final = 72
_LIBXCRYPT_MAX_BYTES: Final = 511
_SCHEME_MAX_BYTES: Final[dict[Scheme, int]] = {
    Scheme.BLF_CRYPT: _BCRYPT_MAX_BYTES,
    Scheme.SHA512_CRYPT: _LIBXCRYPT_MAX_BYTES,
    Scheme.SHA256_CRYPT: _LIBXCRYPT_MAX_BYTES,
}
# Absolute ceiling for anything we hash or verify, whatever policy a caller configured: the cost
# of SHA-crypt grows with the password length, and a login form is unauthenticated input.
_HARD_MAX_BYTES: Final = 4096
# Longest legitimate stored value is far below this; it only bounds the work spent on garbage.
_MAX_STORED_LENGTH: Final = 1024
# One login attempt must not be able to make the process allocate many GiB because an imported
# Argon2 hash asks for it. 1 GiB is what doveadm writes at its highest preset.
_ARGON2_MAX_VERIFY_MEMORY_KIB: Final = 1024 * 1024

_CRYPT_SALT_ALPHABET: Final = "./" + string.digits + string.ascii_uppercase + string.ascii_lowercase
_PBKDF2_SALT_ALPHABET: Final = string.ascii_letters + string.digits
_STANDARD_B64: Final = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
_BCRYPT_B64: Final = "./" + string.ascii_uppercase + string.ascii_lowercase + string.digits
_TO_BCRYPT_B64: Final = str.maketrans(_STANDARD_B64, _BCRYPT_B64)

# Every scheme `doveadm pw -l` lists on 2.3 plus a few removed ones: a value starting with one of
# these in braces is something Dovecot would parse as a stored hash, so it is never a password.
_DOVECOT_SCHEME_NAMES: Final = frozenset(
    {scheme.value for scheme in Scheme}
    | {
        "CLEAR", "CLEARTEXT", "CRAM-MD5", "DES-CRYPT", "DIGEST-MD5", "HMAC-MD5", "LANMAN",
        "LDAP-MD5", "MD5", "NTLM", "OTP", "PLAIN", "PLAIN-MD4", "PLAIN-MD5", "PLAIN-TRUNC",
        "RPA", "SCRAM-SHA-1", "SCRAM-SHA-256", "SHA", "SHA1", "SHA256", "SHA512", "SKEY",
        "SMD5", "SSHA",
    }
)  # fmt: skip

_STORED_PREFIX_RE: Final = re.compile(r"\{([A-Za-z0-9-]{1,32})\}")
# Dovecot also reads "{SCHEME.HEX}" and "{SCHEME.B64}"; refuse those as passwords too.
_HASH_LIKE_PREFIX_RE: Final = re.compile(r"\{([A-Za-z0-9-]{1,32})(?:\.[A-Za-z0-9]{1,8})?\}")
# Lone surrogates are not Unicode scalar values: they cannot be encoded to the UTF-8 bytes that
# IMAP clients send, so such a password could never be typed in again.
_FORBIDDEN_RE: Final = re.compile(r"[\x00\r\n\ud800-\udfff]")

_SHA512_CRYPT_RE: Final = re.compile(
    r"\$6\$(?:rounds=(?P<rounds>[0-9]{1,9})\$)?[^$:\s]{0,16}\$[./0-9A-Za-z]{86}"
)
_SHA256_CRYPT_RE: Final = re.compile(
    r"\$5\$(?:rounds=(?P<rounds>[0-9]{1,9})\$)?[^$:\s]{0,16}\$[./0-9A-Za-z]{43}"
)
# $2x$ marks hashes made by the sign-extension bug of old crypt_blowfish: never accepted.
_BCRYPT_RE: Final = re.compile(r"\$2[aby]\$(?P<cost>[0-9]{2})\$[./A-Za-z0-9]{53}")
_MD5_CRYPT_RE: Final = re.compile(r"\$1\$[^$:\s]{0,8}\$[./0-9A-Za-z]{22}")
_CRYPT_BODY_RE: Final = re.compile(r"[!-9;-~]{2,}")
_ARGON2_RE: Final = re.compile(
    r"\$(?P<variant>argon2id|argon2i)\$v=19\$m=(?P<m>[0-9]{1,10}),t=(?P<t>[0-9]{1,10}),"
    r"p=(?P<p>[0-9]{1,3})\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{16,}"
)
_PBKDF2_RE: Final = re.compile(
    r"\$1\$(?P<salt>[^$\s]{1,64})\$(?P<rounds>[0-9]{1,9})\$(?P<digest>[0-9a-fA-F]{40})"
)

_CryptFunction = Callable[[str, str], str | None]


def _load_crypt() -> _CryptFunction:
    # Python 3.13 removed the stdlib module; crypt_r is the same C code as a package. Both call
    # libxcrypt, the library Dovecot uses, so the outputs are byte-identical.
    try:
        import crypt_r
    except ImportError:
        pass
    else:
        return cast(_CryptFunction, crypt_r.crypt)
    try:
        with warnings.catch_warnings():
            # 3.11/3.12 warn on import; under filterwarnings=error that would be fatal.
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
    except ImportError as exc:
        raise ImportError(
            "mailwarden needs the crypt_r package on Python 3.13+ for SHA-crypt and bcrypt"
        ) from exc
    return crypt.crypt


_crypt: Final = _load_crypt()


def parse_scheme(value: str, field: str = "scheme") -> Scheme:
    """Turn user input (any case) into a scheme we may write, or raise ValidationError."""
    # str.upper() maps some non-ASCII letters onto ASCII (dotless i -> "I"): only ASCII counts.
    scheme = _lookup_scheme(value) if value.isascii() else None
    if scheme is None:
        raise ValidationError(field, "unknown_scheme", "unknown password scheme")
    if scheme not in WRITABLE_SCHEMES:
        allowed = ", ".join(sorted(WRITABLE_SCHEMES))
        raise ValidationError(
            field,
            "scheme_not_writable",
            f"{scheme.value} can only be verified, not written; use one of {allowed}",
        )
    return scheme


def check_password_policy(
    password: str, *, min_length: int = 8, max_length: int = 256, field: str = "password"
) -> None:
    """Apply the one password policy every path (web, API, CLI, import) must pass.

    Lengths are counted in code points. Any Unicode is accepted except NUL, CR, LF (they break
    protocol lines and C strings) and unpaired surrogates. The value is not normalised: Dovecot
    compares the bytes the client sends, so a normalised hash could lock the user out.
    """
    if min_length < 1 or max_length < min_length or 4 * max_length > _HARD_MAX_BYTES:
        raise ValueError(
            f"password policy needs 1 <= min_length <= max_length <= {_HARD_MAX_BYTES // 4}"
        )
    if not password:
        raise ValidationError(field, "required", "a password is required")
    # len() first: it is O(1) and bounds the cost of everything after it.
    if len(password) > max_length:
        raise ValidationError(
            field, "too_long", f"the password must be at most {max_length} characters long"
        )
    _check_characters(password, field)
    # Redundant while UTF-8 needs at most 4 bytes per code point, but states the byte budget
    # the hashers see, independently of how characters are counted.
    if len(password.encode("utf-8")) > 4 * max_length:
        raise ValidationError(
            field, "too_long", f"the password must be at most {4 * max_length} bytes in UTF-8"
        )
    _check_not_hash(password, field)
    if len(password) < min_length:
        raise ValidationError(
            field, "too_short", f"the password must be at least {min_length} characters long"
        )


def hash_password(password: str, scheme: Scheme = DEFAULT_SCHEME) -> str:
    """Hash for storage: "{SCHEME}..." with a fresh salt and Dovecot's default cost.

    Raises ValueError for a scheme that is verify-only, and ValidationError for a password that
    no policy may let through (empty, forbidden characters, a stored hash, beyond the hard byte
    ceiling) or that this scheme cannot represent without truncating it.
    """
    if scheme not in WRITABLE_SCHEMES:
        raise ValueError(f"password scheme {scheme!s} cannot be written")
    scheme = Scheme(scheme)
    field = "password"
    if not password:
        raise ValidationError(field, "required", "a password is required")
    if len(password) > _HARD_MAX_BYTES:
        raise ValidationError(field, "too_long", "the password is too long")
    _check_characters(password, field)
    secret = password.encode("utf-8")
    if len(secret) > _HARD_MAX_BYTES:
        raise ValidationError(field, "too_long", "the password is too long")
    _check_not_hash(password, field)
    scheme_limit = _SCHEME_MAX_BYTES.get(scheme)
    if scheme_limit is not None and len(secret) > scheme_limit:
        raise ValidationError(
            field,
            "too_long_for_scheme",
            f"{scheme.value} can only use the first {scheme_limit} bytes of a password; "
            "choose a shorter password or another scheme",
        )
    return f"{{{scheme.value}}}{_HASHERS[scheme](password, secret)}"


def verify_password(password: str, stored: str) -> bool:
    """True only if `password` matches `stored`; False for anything malformed, never an error."""
    if not password or not stored:
        return False
    parsed = _split_stored(stored)
    if parsed is None:
        return False
    scheme, body = parsed
    secret = _secret_for_verify(password)
    if secret is None:
        return False
    try:
        return _VERIFIERS[scheme](password, secret, body)
    except (ValueError, UnicodeError, nacl.exceptions.CryptoError):
        # Whatever a library makes of a corrupt hash, the answer to "does it match" is no.
        return False


def scheme_of(stored: str) -> Scheme | None:
    """The scheme named by the "{SCHEME}" prefix (any case), or None; the rest is not checked."""
    parsed = _split_stored(stored) if stored else None
    return None if parsed is None else parsed[0]


def needs_rehash(stored: str, scheme: Scheme) -> bool:
    """True if `stored` should be replaced by hash_password(password, scheme) at the next login.

    That is the case when it uses another scheme, is malformed, or uses parameters cheaper than
    the ones hash_password writes now. Dearer parameters are kept: they are not weaker.
    """
    if scheme not in WRITABLE_SCHEMES:
        raise ValueError(f"password scheme {scheme!s} cannot be written")
    parsed = _split_stored(stored) if stored else None
    if parsed is None or parsed[0] != scheme:
        return True
    body = parsed[1]
    if scheme in (Scheme.SHA512_CRYPT, Scheme.SHA256_CRYPT):
        pattern = _SHA512_CRYPT_RE if scheme == Scheme.SHA512_CRYPT else _SHA256_CRYPT_RE
        match = pattern.fullmatch(body)
        # No "rounds=" means the algorithm's default, 5000.
        return match is None or int(match["rounds"] or _SHA_CRYPT_ROUNDS) < _SHA_CRYPT_ROUNDS
    if scheme == Scheme.BLF_CRYPT:
        match = _BCRYPT_RE.fullmatch(body)
        return match is None or int(match["cost"]) < _BCRYPT_COST
    if scheme in (Scheme.ARGON2ID, Scheme.ARGON2I):
        match = _ARGON2_RE.fullmatch(body)
        return (
            match is None
            or match["variant"] != scheme.value.lower()
            or int(match["m"]) < _ARGON2_MEMORY_KIB
            or int(match["t"]) < _ARGON2_OPSLIMIT
        )
    match = _PBKDF2_RE.fullmatch(body)
    return match is None or int(match["rounds"]) < _PBKDF2_ROUNDS


# Unambiguous in most fonts (no 0/O, 1/l/I) and needing no quoting in a shell or URL.
_GENERATED_LETTERS: Final = "".join(c for c in string.ascii_letters if c not in "OlI")
_GENERATED_DIGITS: Final = "23456789"
_GENERATED_SYMBOLS: Final = "-_."
_GENERATED_ALPHABET: Final = _GENERATED_LETTERS + _GENERATED_DIGITS + _GENERATED_SYMBOLS
_GENERATED_EDGE_ALPHABET: Final = _GENERATED_LETTERS + _GENERATED_DIGITS


def generate_password(length: int = 20) -> str:
    """A random password from `secrets` with lower and upper case, a digit and a symbol.

    It starts and ends with a letter or digit: a leading "-" reads as a command-line option and
    a trailing "." gets lost when the password is pasted from a sentence.
    """
    if not 8 <= length <= 256:
        raise ValueError("generated passwords are 8 to 256 characters long")
    while True:
        # Rejection sampling keeps every accepted password equally likely.
        middle = "".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(length - 2))
        candidate = (
            secrets.choice(_GENERATED_EDGE_ALPHABET)
            + middle
            + secrets.choice(_GENERATED_EDGE_ALPHABET)
        )
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c in _GENERATED_DIGITS for c in candidate)
            and any(c in _GENERATED_SYMBOLS for c in candidate)
        ):
            return candidate


# ---------------------------------------------------------------------------------------------
# Internals


def _lookup_scheme(name: str) -> Scheme | None:
    try:
        return Scheme(name.upper())
    except ValueError:
        return None


def _check_characters(password: str, field: str) -> None:
    if _FORBIDDEN_RE.search(password):
        raise ValidationError(
            field,
            "forbidden_character",
            "the password may not contain NUL, carriage return, line feed or unpaired surrogates",
        )


def _looks_like_hash(value: str) -> bool:
    match = _HASH_LIKE_PREFIX_RE.match(value)
    return match is not None and match[1].upper() in _DOVECOT_SCHEME_NAMES


def _check_not_hash(password: str, field: str) -> None:
    if _looks_like_hash(password):
        raise ValidationError(
            field, "looks_like_hash", "a stored password hash cannot be used as a password"
        )


def _split_stored(stored: str) -> tuple[Scheme, str] | None:
    # Dovecot looks scheme names up case-insensitively ("{sha512-crypt}" verifies in doveadm).
    if len(stored) > _MAX_STORED_LENGTH or not stored.isascii():
        return None
    match = _STORED_PREFIX_RE.match(stored)
    if match is None:
        # A bare "$6$..." would mean Dovecot's default_pass_scheme, which we cannot know here.
        return None
    scheme = _lookup_scheme(match[1])
    body = stored[match.end() :]
    if scheme is None or not body:
        return None
    return scheme, body


def _secret_for_verify(password: str) -> bytes | None:
    # The same refusals as hash_password: a login with a value we would never have stored
    # cannot succeed, and the byte ceiling comes before any expensive work.
    if len(password) > _HARD_MAX_BYTES or _FORBIDDEN_RE.search(password):
        return None
    if _looks_like_hash(password):
        return None
    secret = password.encode("utf-8")
    return None if len(secret) > _HARD_MAX_BYTES else secret


def _random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _run_crypt(password: str, setting: str) -> str:
    result = _crypt(password, setting)
    # libxcrypt reports failure with a string starting with "*" ("*0"/"*1"), never a hash.
    if result is None or not result.startswith(setting) or len(result) <= len(setting):
        raise RuntimeError(f"libxcrypt did not produce a hash for setting {setting[:7]}...")
    return result


def _hash_sha512_crypt(password: str, _secret: bytes) -> str:
    # 5000 rounds is the algorithm default, so the "rounds=" field is omitted, as Dovecot does.
    return _run_crypt(password, "$6$" + _random_string(_CRYPT_SALT_ALPHABET, 16))


def _hash_sha256_crypt(password: str, _secret: bytes) -> str:
    return _run_crypt(password, "$5$" + _random_string(_CRYPT_SALT_ALPHABET, 16))


def _hash_bcrypt(password: str, _secret: bytes) -> str:
    # 16 random bytes in bcrypt's base64 give exactly 22 salt characters with the unused low
    # bits zero, so the salt libxcrypt echoes is the one we chose.
    salt = base64.b64encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")
    return _run_crypt(password, f"$2b${_BCRYPT_COST:02d}${salt.translate(_TO_BCRYPT_B64)}")


def _hash_argon2id(_password: str, secret: bytes) -> str:
    hashed: bytes = nacl.pwhash.argon2id.str(
        secret, opslimit=_ARGON2_OPSLIMIT, memlimit=_ARGON2_MEMORY_KIB * 1024
    )
    return hashed.decode("ascii")


def _hash_argon2i(_password: str, secret: bytes) -> str:
    hashed: bytes = nacl.pwhash.argon2i.str(
        secret, opslimit=_ARGON2_OPSLIMIT, memlimit=_ARGON2_MEMORY_KIB * 1024
    )
    return hashed.decode("ascii")


def _hash_pbkdf2(_password: str, secret: bytes) -> str:
    # Dovecot's layout ("$1$" is its format version). The salt is used as text, not decoded.
    salt = _random_string(_PBKDF2_SALT_ALPHABET, 16)
    digest = hashlib.pbkdf2_hmac("sha1", secret, salt.encode("ascii"), _PBKDF2_ROUNDS, 20)
    return f"$1${salt}${_PBKDF2_ROUNDS}${digest.hex()}"


def _crypt_matches(password: str, body: str) -> bool:
    result = _crypt(password, body)
    if result is None or result.startswith("*"):
        return False
    return hmac.compare_digest(result.encode("ascii"), body.encode("ascii"))


def _verify_with_pattern(pattern: re.Pattern[str]) -> Callable[[str, bytes, str], bool]:
    def verify(password: str, _secret: bytes, body: str) -> bool:
        # The label must match the algorithm: libxcrypt would happily verify "$1$" under
        # {SHA512-CRYPT}, and needs_rehash relies on the label.
        return pattern.fullmatch(body) is not None and _crypt_matches(password, body)

    return verify


def _verify_crypt(password: str, _secret: bytes, body: str) -> bool:
    # {CRYPT} means "whatever crypt(3) understands" (DES, $y$ yescrypt, $2y$, ...).
    return _CRYPT_BODY_RE.fullmatch(body) is not None and _crypt_matches(password, body)


def _verify_ssha(algorithm: str, size: int) -> Callable[[str, bytes, str], bool]:
    def verify(_password: str, secret: bytes, body: str) -> bool:
        try:
            raw = base64.b64decode(body, validate=True)
        except binascii.Error:
            return False
        # Layout: digest(password + salt) followed by the salt; Dovecot requires a salt.
        if len(raw) <= size:
            return False
        expected, salt = raw[:size], raw[size:]
        return hmac.compare_digest(hashlib.new(algorithm, secret + salt).digest(), expected)

    return verify


def _verify_argon2(variant: str) -> Callable[[str, bytes, str], bool]:
    module = nacl.pwhash.argon2id if variant == "argon2id" else nacl.pwhash.argon2i

    def verify(_password: str, secret: bytes, body: str) -> bool:
        match = _ARGON2_RE.fullmatch(body)
        # libsodium's verify accepts either variant whatever it is called with, so the label is
        # checked here.
        if match is None or match["variant"] != variant:
            return False
        if int(match["m"]) > _ARGON2_MAX_VERIFY_MEMORY_KIB:
            return False
        # libsodium recomputes and compares in constant time itself (the same call Dovecot
        # makes), which also covers lane counts and lengths a Python recomputation would not.
        try:
            return bool(module.verify(body.encode("ascii"), secret))
        except nacl.exceptions.InvalidkeyError:
            return False

    return verify


def _verify_pbkdf2(_password: str, secret: bytes, body: str) -> bool:
    match = _PBKDF2_RE.fullmatch(body)
    if match is None:
        return False
    rounds = int(match["rounds"])
    if rounds < 1:
        return False
    computed = hashlib.pbkdf2_hmac("sha1", secret, match["salt"].encode("ascii"), rounds, 20)
    return hmac.compare_digest(computed, bytes.fromhex(match["digest"]))


_HASHERS: Final[dict[Scheme, Callable[[str, bytes], str]]] = {
    Scheme.SHA512_CRYPT: _hash_sha512_crypt,
    Scheme.SHA256_CRYPT: _hash_sha256_crypt,
    Scheme.BLF_CRYPT: _hash_bcrypt,
    Scheme.ARGON2ID: _hash_argon2id,
    Scheme.ARGON2I: _hash_argon2i,
    Scheme.PBKDF2: _hash_pbkdf2,
}

_VERIFIERS: Final[dict[Scheme, Callable[[str, bytes, str], bool]]] = {
    Scheme.SHA512_CRYPT: _verify_with_pattern(_SHA512_CRYPT_RE),
    Scheme.SHA256_CRYPT: _verify_with_pattern(_SHA256_CRYPT_RE),
    Scheme.BLF_CRYPT: _verify_with_pattern(_BCRYPT_RE),
    Scheme.MD5_CRYPT: _verify_with_pattern(_MD5_CRYPT_RE),
    Scheme.CRYPT: _verify_crypt,
    Scheme.ARGON2ID: _verify_argon2("argon2id"),
    Scheme.ARGON2I: _verify_argon2("argon2i"),
    Scheme.PBKDF2: _verify_pbkdf2,
    Scheme.SSHA512: _verify_ssha("sha512", 64),
    Scheme.SSHA256: _verify_ssha("sha256", 32),
}
