"""TOTP codes and recovery codes: shapes, normalization, the window and replay."""

from __future__ import annotations

import math
import re

import pyotp
import pytest

from mailwarden.twofactor.codes import (
    RECOVERY_ALPHABET,
    hash_recovery_code,
    matching_step,
    new_recovery_code,
    new_secret,
    normalize_recovery_code,
    normalize_totp,
    provisioning_uri,
)

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# A moment in the middle of a 30-second step, so that ±1 step is unambiguous.
NOW = 1_700_000_015.0
STEP = int(NOW) // 30


def code_at(step: int) -> str:
    return pyotp.TOTP(SECRET).generate_otp(step)


def test_it_makes_recovery_codes_of_two_groups_of_five() -> None:
    codes = {new_recovery_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert re.fullmatch(f"[{RECOVERY_ALPHABET}]{{5}}-[{RECOVERY_ALPHABET}]{{5}}", code)


def test_recovery_codes_carry_at_least_fifty_random_bits() -> None:
    assert len(set(RECOVERY_ALPHABET)) == len(RECOVERY_ALPHABET)
    assert 10 * math.log2(len(RECOVERY_ALPHABET)) >= 50


@pytest.mark.parametrize("lookalike", ["i", "l", "o", "u"])
def test_the_alphabet_has_no_lookalikes(lookalike: str) -> None:
    assert lookalike not in RECOVERY_ALPHABET
    assert RECOVERY_ALPHABET.islower()


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("abcde-12345", "abcde12345"),
        ("ABCDE-12345", "abcde12345"),
        (" abcde 12345 ", "abcde12345"),
        ("abcde12345", "abcde12345"),
        ("a-b-c-d-e-1-2-3-4-5", "abcde12345"),
        # People read lookalikes as digits: Crockford's decoding.
        ("abcde-oIL45", "abcde01145"),
    ],
)
def test_it_normalizes_typed_recovery_codes(typed: str, canonical: str) -> None:
    assert normalize_recovery_code(typed) == canonical


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "abcde-1234",
        "abcde-123456",
        "abcde-1234u",
        "abcde_12345",
        "abcde-1234\u212a",  # the Kelvin sign lowercases to ASCII k
        "\uff41bcde-12345",  # full-width a
        "abcde-12345" + " " * 100,
    ],
)
def test_it_refuses_malformed_recovery_codes(typed: str) -> None:
    assert normalize_recovery_code(typed) is None


def test_the_stored_hash_is_sha256_of_the_canonical_code() -> None:
    digest = hash_recovery_code("abcde12345")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == hash_recovery_code(normalize_recovery_code("ABCDE-12345") or "")


@pytest.mark.parametrize(
    ("typed", "digits"),
    [("123456", "123456"), ("123 456", "123456"), (" 123-456 ", "123456")],
)
def test_it_normalizes_typed_totp_codes(typed: str, digits: str) -> None:
    assert normalize_totp(typed) == digits


@pytest.mark.parametrize(
    "typed", ["", "12345", "1234567", "12345a", "\u0661\u0662\u0663\u0664\u0665\u0666", "1" * 80]
)
def test_it_refuses_malformed_totp_codes(typed: str) -> None:
    assert normalize_totp(typed) is None


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_it_accepts_codes_within_one_step(offset: int) -> None:
    assert matching_step(SECRET, code_at(STEP + offset), after_step=0, now=NOW) == STEP + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_it_refuses_codes_further_away(offset: int) -> None:
    assert matching_step(SECRET, code_at(STEP + offset), after_step=0, now=NOW) is None


def test_a_code_is_good_once() -> None:
    code = code_at(STEP)
    assert matching_step(SECRET, code, after_step=STEP, now=NOW) is None
    assert matching_step(SECRET, code, after_step=STEP - 1, now=NOW) == STEP


def test_an_older_code_is_refused_after_a_newer_one() -> None:
    assert matching_step(SECRET, code_at(STEP - 1), after_step=STEP, now=NOW) is None


def test_a_typed_code_with_a_space_matches() -> None:
    code = code_at(STEP)
    assert matching_step(SECRET, f"{code[:3]} {code[3:]}", after_step=0, now=NOW) == STEP


def test_a_wrong_code_matches_no_step() -> None:
    valid = {code_at(STEP + offset) for offset in (-1, 0, 1)}
    wrong = next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)
    assert matching_step(SECRET, wrong, after_step=0, now=NOW) is None
    assert matching_step(SECRET, "not a code", after_step=0, now=NOW) is None


def test_secrets_are_fresh_base32_and_the_uri_names_account_and_issuer() -> None:
    secret = new_secret()
    assert secret != new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    uri = provisioning_uri(secret, "alice", "Mailwarden")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.name, parsed.issuer) == (secret, "alice", "Mailwarden")
