"""Our hashes against the real Dovecot: `doveadm pw -t` must accept them, and we must accept its.

Needs `doveadm` (Debian package dovecot-core). Without it the tests skip locally and fail on CI,
so a CI image that lost the package cannot turn this file green by skipping it.
"""

from __future__ import annotations

import subprocess

import pytest

from mailwarden.kernel.passwords import (
    WRITABLE_SCHEMES,
    Scheme,
    hash_password,
    needs_rehash,
    scheme_of,
    verify_password,
)
from tests.support.services import require_tool

# Two-byte, three-byte and four-byte UTF-8, a space and a quote: all reach doveadm unchanged
# because argv is a list, never a shell line.
PASSWORD = "Pässwörd ✓ 'quoted' 🔐"
WRONG = "Pässwörd ✓ 'quoted' 🔑"
WRITABLE = sorted(WRITABLE_SCHEMES)
VERIFY_ONLY_FROM_DOVEADM = [Scheme.SSHA512, Scheme.SSHA256, Scheme.MD5_CRYPT, Scheme.CRYPT]


def _doveadm() -> str:
    return require_tool("doveadm", "dovecot-core")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_doveadm(), "pw", *args], capture_output=True, text=True, timeout=60, check=False
    )


def _doveadm_verifies(stored: str, password: str) -> bool:
    result = _run("-t", stored, "-p", password)
    if result.returncode == 0:
        assert "(verified)" in result.stdout, result
        return True
    # A mismatch is exit 75 with "Password mismatch"; anything else means doveadm could not
    # even parse the hash, which is a different failure and must not pass as "refused".
    assert "mismatch" in result.stderr.lower(), result
    return False


@pytest.mark.parametrize("scheme", WRITABLE)
def test_doveadm_accepts_mailwarden_hashes(scheme: Scheme) -> None:
    _doveadm()  # skip or fail before spending an Argon2 hash
    stored = hash_password(PASSWORD, scheme)
    assert _doveadm_verifies(stored, PASSWORD), stored
    assert not _doveadm_verifies(stored, WRONG), stored


@pytest.mark.parametrize("scheme", WRITABLE + VERIFY_ONLY_FROM_DOVEADM)
def test_mailwarden_verifies_doveadm_hashes(scheme: Scheme) -> None:
    result = _run("-s", scheme.value, "-p", PASSWORD)
    assert result.returncode == 0, result
    stored = result.stdout.strip()
    assert stored.startswith(f"{{{scheme.value}}}"), stored
    assert scheme_of(stored) is scheme
    assert verify_password(PASSWORD, stored), stored
    assert not verify_password(WRONG, stored), stored


@pytest.mark.parametrize(
    ("scheme", "rounds", "expected"),
    [
        (Scheme.SHA512_CRYPT, None, False),
        (Scheme.SHA512_CRYPT, "10000", False),
        (Scheme.SHA512_CRYPT, "1000", True),
        (Scheme.BLF_CRYPT, None, False),
        (Scheme.BLF_CRYPT, "4", True),
        (Scheme.PBKDF2, "1000", True),
        # doveadm's ARGON2I default is libsodium's "interactive" preset (m=32 MiB, t=4),
        # less memory than the 64 MiB hash_password writes.
        (Scheme.ARGON2I, None, True),
    ],
)
def test_needs_rehash_reads_doveadm_parameters(
    scheme: Scheme, rounds: str | None, expected: bool
) -> None:
    extra = ["-r", rounds] if rounds is not None else []
    result = _run("-s", scheme.value, *extra, "-p", PASSWORD)
    assert result.returncode == 0, result
    stored = result.stdout.strip()
    assert verify_password(PASSWORD, stored), stored
    assert needs_rehash(stored, scheme) is expected, stored


def test_blf_crypt_verification_matches_dovecots_truncation() -> None:
    # Imported bcrypt hashes of long passwords must keep working exactly as in Dovecot, which
    # uses the first 72 bytes; only writing such hashes is refused.
    long_password = "x" * 72 + "ignored by bcrypt"
    stored = _run("-s", "BLF-CRYPT", "-p", long_password).stdout.strip()
    assert verify_password(long_password, stored)
    assert verify_password("x" * 72, stored)
    assert _doveadm_verifies(stored, "x" * 72)


def test_dovecot_cannot_use_the_sha_crypt_passphrases_we_refuse() -> None:
    # The reason for too_long_for_scheme on SHA-crypt: libxcrypt stops at 511 bytes, and
    # doveadm 2.3.19 then prints the failure token "{SHA512-CRYPT}*0" as if it were a hash.
    made = _run("-s", "SHA512-CRYPT", "-p", "a" * 512).stdout.strip()
    assert not _doveadm_verifies(made, "a" * 512), made
    assert not verify_password("a" * 512, made)
    assert _doveadm_verifies(hash_password("a" * 511), "a" * 511)
