"""Password hashing: Dovecot layouts, verification of imported schemes, and the password policy.

Argon2 costs about 0.1 s per hash or verify, so hashes are made once per module and shared.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import shutil
import subprocess
import time

import pytest

from mailwarden.kernel import passwords
from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.passwords import (
    DEFAULT_SCHEME,
    WRITABLE_SCHEMES,
    Scheme,
    check_password_policy,
    generate_password,
    hash_password,
    needs_rehash,
    parse_scheme,
    scheme_of,
    verify_password,
)

PASSWORD = "correct horse battery staple"
# Latin-1 letters, a symbol from the BMP, an emoji outside it, Cyrillic, CJK and a tab.
UNICODE_PASSWORD = "pässwörd✓ 🔐 пароль 密码\tend"
WRITABLE = sorted(WRITABLE_SCHEMES)

LAYOUTS: dict[Scheme, str] = {
    Scheme.SHA512_CRYPT: r"\{SHA512-CRYPT\}\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}",
    Scheme.SHA256_CRYPT: r"\{SHA256-CRYPT\}\$5\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{43}",
    Scheme.BLF_CRYPT: r"\{BLF-CRYPT\}\$2b\$05\$[./A-Za-z0-9]{22}[./A-Za-z0-9]{31}",
    Scheme.ARGON2ID: (
        r"\{ARGON2ID\}\$argon2id\$v=19\$m=65536,t=3,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}"
    ),
    Scheme.ARGON2I: (
        r"\{ARGON2I\}\$argon2i\$v=19\$m=65536,t=3,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}"
    ),
    Scheme.PBKDF2: r"\{PBKDF2\}\$1\$[A-Za-z0-9]{16}\$5000\$[0-9a-f]{40}",
}


@pytest.fixture(scope="module")
def hashes() -> dict[Scheme, str]:
    return {scheme: hash_password(PASSWORD, scheme) for scheme in WRITABLE}


@pytest.fixture(scope="module")
def unicode_hashes() -> dict[Scheme, str]:
    return {scheme: hash_password(UNICODE_PASSWORD, scheme) for scheme in WRITABLE}


# --- Round trips and layouts ---------------------------------------------------------------------


@pytest.mark.parametrize("scheme", WRITABLE)
def test_it_round_trips_every_writable_scheme(hashes: dict[Scheme, str], scheme: Scheme) -> None:
    assert verify_password(PASSWORD, hashes[scheme])
    assert scheme_of(hashes[scheme]) is scheme


@pytest.mark.parametrize("scheme", WRITABLE)
def test_it_refuses_a_wrong_password(hashes: dict[Scheme, str], scheme: Scheme) -> None:
    # One near miss per scheme: Argon2 costs 0.1 s per attempt, and the comparison is the same.
    assert not verify_password("correct horse battery stapl", hashes[scheme])
    assert not verify_password("", hashes[scheme])


def test_it_refuses_near_misses() -> None:
    stored = hash_password(PASSWORD, Scheme.SHA512_CRYPT)
    for wrong in (PASSWORD.upper(), PASSWORD + " ", " " + PASSWORD, PASSWORD[1:], PASSWORD + "\t"):
        assert not verify_password(wrong, stored)


@pytest.mark.parametrize("scheme", WRITABLE)
def test_it_writes_dovecots_exact_layout(hashes: dict[Scheme, str], scheme: Scheme) -> None:
    assert re.fullmatch(LAYOUTS[scheme], hashes[scheme]), hashes[scheme]


@pytest.mark.parametrize("scheme", WRITABLE)
def test_it_salts_every_hash_afresh(hashes: dict[Scheme, str], scheme: Scheme) -> None:
    again = hash_password(PASSWORD, scheme)
    assert again != hashes[scheme]
    assert _salt(again) != _salt(hashes[scheme])


def _salt(stored: str) -> str:
    fields = stored.split("$")
    if stored.startswith("{BLF-CRYPT}"):
        return fields[3][:22]
    return fields[4] if stored.startswith("{ARGON2") else fields[2]


@pytest.mark.parametrize("scheme", WRITABLE)
def test_it_round_trips_unicode_in_every_writable_scheme(
    unicode_hashes: dict[Scheme, str], scheme: Scheme
) -> None:
    stored = unicode_hashes[scheme]
    assert re.fullmatch(LAYOUTS[scheme], stored)
    assert verify_password(UNICODE_PASSWORD, stored)


def test_it_does_not_normalise_unicode() -> None:
    # Dovecot compares the bytes the client sends: NFD "ä" is a different password.
    stored = hash_password(UNICODE_PASSWORD, Scheme.PBKDF2)
    assert not verify_password(UNICODE_PASSWORD.replace("ä", "a\u0308"), stored)


def test_it_writes_sha512_crypt_by_default() -> None:
    assert DEFAULT_SCHEME is Scheme.SHA512_CRYPT
    assert hash_password(PASSWORD).startswith("{SHA512-CRYPT}$6$")


def test_it_accepts_a_plain_string_naming_a_writable_scheme() -> None:
    stored = hash_password(PASSWORD, "SHA256-CRYPT")  # type: ignore[arg-type]
    assert stored.startswith("{SHA256-CRYPT}$5$")


def test_pbkdf2_digest_is_sha1_pbkdf2_of_the_salt_text(hashes: dict[Scheme, str]) -> None:
    _, _, salt, rounds, digest = hashes[Scheme.PBKDF2].split("$")
    expected = hashlib.pbkdf2_hmac("sha1", PASSWORD.encode(), salt.encode(), int(rounds), 20)
    assert digest == expected.hex()


# --- Known vectors from independent implementations ----------------------------------------------

# PHP manual's crypt() examples (PHP's own implementations), `openssl passwd`, and Dovecot
# 2.3.19 `doveadm pw`. The yescrypt line was made with libxcrypt itself: it checks that {CRYPT}
# hands the value to crypt(3) unchanged, not yescrypt.
KNOWN_VECTORS: list[tuple[str, str]] = [
    ("rasmuslerdorf", "{MD5-CRYPT}$1$rasmusle$rISCgZzpwk3UhDidwXvin0"),
    ("pässwörd✓", "{MD5-CRYPT}$1$abcdefgh$UmZECCLTnaA9WZoEptWQV1"),
    ("pässwörd✓", "{MD5-CRYPT}$1$KMfiXCmX$NREd0M06lJHQCONJZEYcb."),
    ("rasmuslerdorf", "{CRYPT}rl.3StKT.4T8M"),
    ("rasmuslerdorf", "{CRYPT}_J9..rasmBYk8r9AiWNc"),
    ("rasmuslerdorf", "{CRYPT}$1$rasmusle$rISCgZzpwk3UhDidwXvin0"),
    ("pässwörd✓", "{CRYPT}$2y$05$FiaYKbbpyE3fL0majeKiguFppAAvr6FdOB1urmQiDmNR5urm96dzK"),
    (
        "pässwörd✓",
        "{CRYPT}$y$j9T$7Zr1PK0sxvSP2Yt4dQJ/l.$/gCbs9HklicoUPU5rjjtRmeH61r6DFF8.kSOrsr2GzD",
    ),
    ("rasmuslerdorf", "{BLF-CRYPT}$2y$07$usesomesillystringfore2uDLvp1Ii2e./U9C8sBjqp8I90dH6hi"),
    ("pässwörd✓", "{BLF-CRYPT}$2y$05$2X3X/JuwJZ.fTAoiWlSFuusuIYJXTIO5M2aIFUEtVfH.N31F/baxW"),
    (
        "rasmuslerdorf",
        "{SHA256-CRYPT}$5$rounds=5000$usesomesillystri$KqJWpanXZHKq2BOB43TSaYhEWsQ1Lr5QNyPCDH/Tp.6",
    ),
    ("pw", "{SHA256-CRYPT}$5$saltsalt$0rl.MZtoLLPP3X0Rdl8riRnphIcAXJY27/aOAyK2hB5"),
    (
        "rasmuslerdorf",
        "{SHA512-CRYPT}$6$rounds=5000$usesomesillystri$D4IrlXatmP7rx3P3InaxBeoomnAihCKRVQP22JZ6EY4"
        "7Wc6BkroIuUUBOov1i.S5KPgErtP/EN5mcO.ChWQW21",
    ),
    (
        "pw",
        "{SHA512-CRYPT}$6$rounds=10000$abcdefgh$b9OdXFDxih4hTi84n/0Xr2Eb4Je1XVUNPnusE55wyysH0zjrMTiKu"
        "ZcnzsRaM68TycAOjcVYDvma8TDdtQpIU.",
    ),
    (
        "pässwörd✓",
        "{SHA512-CRYPT}$6$Xy1.$YR1.KSuNBBC47Fq/HZaejLxx8KUHZHGafAIvdPHtkFtWCDeNB63o6NUuw9VeiCZ9/4QH1Gx"
        "l6afibK77OrPD91",
    ),
    (
        "pässwörd✓",
        "{SSHA512}0eMNte0iWzYt0EMVGrjwX5JggZintaYP0j4zFwBNLutj54KAF9EBiOjl6xiWhSatSaISe6dKkzf1NMjd3uW"
        "4JI2uBjQ=",
    ),
    ("pässwörd✓", "{SSHA256}uGWSSV6y/miz7U1FWiqdu5cjTj90B8yh6cLa2EkjwhAs3wbs"),
    ("pässwörd✓", "{PBKDF2}$1$17KrquNuxEeCzmQK$5000$0568ac09de535f3a7f5f6c3fa4853c0e1ff75524"),
    ("x", "{PBKDF2}$1$Gdnov5oB3frKQON7$7000$666bd5a7db0603bf11b891876e99526e4142ac34"),
    (
        "pässwörd✓",
        "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$BSKQbv7KALx5E8BswBQ/KA$Z6VEkgZ5FmEiLJvhjjFsRbt+7F/"
        "8t9mt03o+dGEL8L0",
    ),
    (
        "pässwörd✓",
        "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$jx2YsIyRpjcjotQhYem/uw$06T0Wp1nEsTIwg3Lu7cTT97s9AgUe"
        "Wcxw30Im6BVuWQ",
    ),
]


@pytest.mark.parametrize(("password", "stored"), KNOWN_VECTORS)
def test_it_verifies_known_vectors(password: str, stored: str) -> None:
    assert verify_password(password, stored)
    # A changed first character: DES crypt ignores everything after the eighth.
    assert not verify_password("X" + password[1:], stored)


def test_it_reads_the_scheme_name_in_any_case() -> None:
    stored = "{md5-crypt}$1$rasmusle$rISCgZzpwk3UhDidwXvin0"
    assert scheme_of(stored) is Scheme.MD5_CRYPT
    assert verify_password("rasmuslerdorf", stored)


@pytest.mark.parametrize(("algorithm", "scheme"), [("sha512", "SSHA512"), ("sha256", "SSHA256")])
def test_it_verifies_ssha_built_with_hashlib(algorithm: str, scheme: str) -> None:
    for salt in (secrets.token_bytes(4), secrets.token_bytes(16), b"\x00" * 8):
        secret = UNICODE_PASSWORD.encode()
        raw = hashlib.new(algorithm, secret + salt).digest() + salt
        stored = f"{{{scheme}}}{base64.b64encode(raw).decode()}"
        assert verify_password(UNICODE_PASSWORD, stored)
        assert not verify_password(UNICODE_PASSWORD[:-1], stored)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize(
    ("flag", "scheme"), [("-1", "MD5-CRYPT"), ("-5", "SHA256-CRYPT"), ("-6", "SHA512-CRYPT")]
)
def test_it_verifies_what_openssl_passwd_writes(flag: str, scheme: str) -> None:
    salt = secrets.token_hex(4)
    made = subprocess.run(
        ["openssl", "passwd", flag, "-salt", salt, UNICODE_PASSWORD],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    assert verify_password(UNICODE_PASSWORD, f"{{{scheme}}}{made}")
    assert not verify_password(PASSWORD, f"{{{scheme}}}{made}")


# --- Verification is strict and never raises -----------------------------------------------------

GARBAGE_STORED = [
    "",
    "   ",
    "{SHA512-CRYPT}",
    "{SHA512-CRYPT}*0",  # what Dovecot 2.3.19 stores when libxcrypt refuses a long passphrase
    "{SHA512-CRYPT}$6$",
    "{SHA512-CRYPT}$6$salt$short",
    "{SHA512-CRYPT}$6$rounds=10$abcdefgh$" + "a" * 86,
    "{SHA512-CRYPT}$1$rasmusle$rISCgZzpwk3UhDidwXvin0",  # label does not match the algorithm
    "{BLF-CRYPT}$2x$05$" + "a" * 53,
    "{BLF-CRYPT}$2b$99$" + "a" * 53,
    "{ARGON2ID}$argon2i$v=19$m=65536,t=3,p=1$jx2YsIyRpjcjotQhYem/uw$06T0Wp1nEsTIwg3Lu7cTT97s9AgUe",
    "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$$",
    "{ARGON2ID}$argon2id$v=19$m=99999999,t=3,p=1$BSKQbv7KALx5E8BswBQ/KA$Z6VEkgZ5FmEiLJvhjjFsRbt+7F",
    "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$" + "A" * 300,
    "{PBKDF2}$1$salt$0$" + "0" * 40,
    "{PBKDF2}$1$salt$5000$" + "z" * 40,
    "{PBKDF2}$1$salt$5000$abc",
    "{SSHA512}not base64!",
    "{SSHA512}" + base64.b64encode(b"x" * 64).decode(),  # digest without salt
    "{SSHA256}====",
    "{CRYPT}",
    "{CRYPT}*",
    "{CRYPT}!$6$abc$def",
    "{CRYPT}$9$unknown$method",
    "{PLAIN}correct horse battery staple",
    "{CLEAR}correct horse battery staple",
    "{SHA512-CRYPT.HEX}abcdef",
    "{UNKNOWN}whatever",
    "{}",
    "$6$saltsalt$" + "a" * 86,  # no prefix: Dovecot's default_pass_scheme is unknown here
    "correct horse battery staple",
    "{SHA512-CRYPT}$6$sält$" + "a" * 86,
    "{SSHA512}" + "A" * 5000,
    "\x00\r\n",
    "{SHA512-CRYPT}\ud800",
]


@pytest.mark.parametrize("stored", GARBAGE_STORED)
def test_it_returns_false_for_garbage_stored_values(stored: str) -> None:
    assert verify_password(PASSWORD, stored) is False
    assert verify_password("", stored) is False


@pytest.mark.parametrize("scheme", WRITABLE)
def test_a_stored_hash_never_verifies_as_its_own_password(
    hashes: dict[Scheme, str], scheme: Scheme
) -> None:
    stored = hashes[scheme]
    assert not verify_password(stored, stored)
    # Also not when hashed on purpose: hash_password refuses to make such a hash.
    with pytest.raises(ValidationError) as caught:
        hash_password(stored, scheme)
    assert caught.value.rule == "looks_like_hash"


@pytest.mark.parametrize("password", ["pw\x00", "pw\r", "pw\n", "pw\ud83d", "a" * 5000])
def test_it_returns_false_for_passwords_that_could_never_have_been_stored(password: str) -> None:
    assert verify_password(password, hash_password(PASSWORD, Scheme.PBKDF2)) is False


def test_verification_compares_in_constant_time(
    hashes: dict[Scheme, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    checked = [
        hashes[Scheme.SHA512_CRYPT],
        hashes[Scheme.SHA256_CRYPT],
        hashes[Scheme.BLF_CRYPT],
        hashes[Scheme.PBKDF2],
        "{MD5-CRYPT}$1$rasmusle$rISCgZzpwk3UhDidwXvin0",
        "{CRYPT}rl.3StKT.4T8M",
        "{SSHA256}uGWSSV6y/miz7U1FWiqdu5cjTj90B8yh6cLa2EkjwhAs3wbs",
    ]
    for stored in checked:
        calls.clear()
        verify_password("not the password", stored)
        assert len(calls) == 1, stored


def test_verification_refuses_huge_passwords_before_hashing(hashes: dict[Scheme, str]) -> None:
    started = time.perf_counter()
    for _ in range(100):
        assert not verify_password("a" * 10_000_000, hashes[Scheme.SHA512_CRYPT])
    assert time.perf_counter() - started < 1.0


# --- Per-scheme limits ---------------------------------------------------------------------------


def test_blf_crypt_refuses_passwords_it_would_truncate() -> None:
    at_limit = "✓" * 24  # 72 UTF-8 bytes
    assert verify_password(at_limit, hash_password(at_limit, Scheme.BLF_CRYPT))
    with pytest.raises(ValidationError) as caught:
        hash_password(at_limit + "a", Scheme.BLF_CRYPT)
    assert (caught.value.field, caught.value.rule) == ("password", "too_long_for_scheme")
    # Other schemes take the whole password.
    long_password = at_limit + "a"
    assert verify_password(long_password, hash_password(long_password, Scheme.PBKDF2))


@pytest.mark.parametrize("scheme", [Scheme.SHA512_CRYPT, Scheme.SHA256_CRYPT])
def test_sha_crypt_refuses_passphrases_libxcrypt_cannot_take(scheme: Scheme) -> None:
    # libxcrypt stops at 511 bytes; Dovecot would store the failure token "*0" instead.
    assert verify_password("a" * 511, hash_password("a" * 511, scheme))
    with pytest.raises(ValidationError) as caught:
        hash_password("😀" * 128, scheme)  # 512 bytes, within the default policy
    assert caught.value.rule == "too_long_for_scheme"


@pytest.mark.parametrize("scheme", [Scheme.SSHA512, Scheme.SSHA256, Scheme.MD5_CRYPT, Scheme.CRYPT])
def test_it_refuses_to_write_verify_only_schemes(scheme: Scheme) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        hash_password(PASSWORD, scheme)
    with pytest.raises(ValueError, match="cannot be written"):
        needs_rehash("{SSHA512}x", scheme)


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("", "required"),
        ("a\x00b", "forbidden_character"),
        ("a\nb", "forbidden_character"),
        ("a" * 4097, "too_long"),
        ("✓" * 2000, "too_long"),
        ("{SHA512-CRYPT}$6$abc", "looks_like_hash"),
        ("{plain}secret", "looks_like_hash"),
    ],
)
def test_hash_password_applies_the_rules_no_policy_may_relax(password: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        hash_password(password, Scheme.PBKDF2)
    assert (caught.value.field, caught.value.rule) == ("password", rule)


# --- needs_rehash --------------------------------------------------------------------------------


def test_a_fresh_hash_needs_no_rehash(hashes: dict[Scheme, str]) -> None:
    for scheme, stored in hashes.items():
        assert not needs_rehash(stored, scheme), scheme
        other = Scheme.PBKDF2 if scheme != Scheme.PBKDF2 else Scheme.SHA512_CRYPT
        assert needs_rehash(stored, other), scheme


SALT16 = "abcdefghABCDEFGH"
SHA512_TAIL = "a" * 86
ARGON2_TAIL = "BSKQbv7KALx5E8BswBQ/KA$Z6VEkgZ5FmEiLJvhjjFsRbt+7F/8t9mt03o+dGEL8L0"


@pytest.mark.parametrize(
    ("stored", "scheme", "expected"),
    [
        (f"{{SHA512-CRYPT}}$6${SALT16}${SHA512_TAIL}", Scheme.SHA512_CRYPT, False),
        (f"{{SHA512-CRYPT}}$6$rounds=5000${SALT16}${SHA512_TAIL}", Scheme.SHA512_CRYPT, False),
        (f"{{SHA512-CRYPT}}$6$rounds=656000${SALT16}${SHA512_TAIL}", Scheme.SHA512_CRYPT, False),
        (f"{{SHA512-CRYPT}}$6$rounds=4999${SALT16}${SHA512_TAIL}", Scheme.SHA512_CRYPT, True),
        (f"{{SHA512-CRYPT}}$6$rounds=1000${SALT16}${SHA512_TAIL}", Scheme.SHA512_CRYPT, True),
        (f"{{sha512-crypt}}$6${SALT16}${SHA512_TAIL}", Scheme.SHA512_CRYPT, False),
        (f"{{SHA512-CRYPT}}$6${SALT16}${SHA512_TAIL}", Scheme.SHA256_CRYPT, True),
        (f"{{SHA256-CRYPT}}$5$rounds=2000${SALT16}${'a' * 43}", Scheme.SHA256_CRYPT, True),
        (f"{{SHA256-CRYPT}}$5${SALT16}${'a' * 43}", Scheme.SHA256_CRYPT, False),
        ("{SHA512-CRYPT}$6$garbage", Scheme.SHA512_CRYPT, True),
        ("{BLF-CRYPT}$2y$05$" + "a" * 53, Scheme.BLF_CRYPT, False),
        ("{BLF-CRYPT}$2a$10$" + "a" * 53, Scheme.BLF_CRYPT, False),
        ("{BLF-CRYPT}$2b$04$" + "a" * 53, Scheme.BLF_CRYPT, True),
        ("{BLF-CRYPT}$2x$05$" + "a" * 53, Scheme.BLF_CRYPT, True),
        (f"{{ARGON2ID}}$argon2id$v=19$m=65536,t=3,p=1${ARGON2_TAIL}", Scheme.ARGON2ID, False),
        (f"{{ARGON2ID}}$argon2id$v=19$m=262144,t=4,p=1${ARGON2_TAIL}", Scheme.ARGON2ID, False),
        (f"{{ARGON2ID}}$argon2id$v=19$m=65536,t=2,p=1${ARGON2_TAIL}", Scheme.ARGON2ID, True),
        (f"{{ARGON2ID}}$argon2id$v=19$m=32768,t=3,p=1${ARGON2_TAIL}", Scheme.ARGON2ID, True),
        # doveadm's own ARGON2I default (libsodium "interactive"): less memory than we write.
        (f"{{ARGON2I}}$argon2i$v=19$m=32768,t=4,p=1${ARGON2_TAIL}", Scheme.ARGON2I, True),
        (f"{{ARGON2I}}$argon2id$v=19$m=65536,t=3,p=1${ARGON2_TAIL}", Scheme.ARGON2I, True),
        ("{PBKDF2}$1$abcdefghABCDEFGH$5000$" + "0" * 40, Scheme.PBKDF2, False),
        ("{PBKDF2}$1$abcdefghABCDEFGH$10000$" + "0" * 40, Scheme.PBKDF2, False),
        ("{PBKDF2}$1$abcdefghABCDEFGH$1000$" + "0" * 40, Scheme.PBKDF2, True),
        ("{SSHA512}" + "A" * 100, Scheme.SHA512_CRYPT, True),
        ("{MD5-CRYPT}$1$rasmusle$rISCgZzpwk3UhDidwXvin0", Scheme.SHA512_CRYPT, True),
        ("", Scheme.SHA512_CRYPT, True),
        ("garbage", Scheme.PBKDF2, True),
    ],
)
def test_needs_rehash(stored: str, scheme: Scheme, expected: bool) -> None:
    assert needs_rehash(stored, scheme) is expected


# --- scheme_of and parse_scheme ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("{SHA512-CRYPT}$6$x", Scheme.SHA512_CRYPT),
        ("{ssha256}abc", Scheme.SSHA256),
        ("{CRYPT}rl.3StKT.4T8M", Scheme.CRYPT),
        ("{PLAIN}x", None),
        ("{SHA512-CRYPT}", None),
        ("$6$abc$def", None),
        ("", None),
        ("{SHA512-CRYPT}$6$ä", None),
    ],
)
def test_scheme_of(stored: str, expected: Scheme | None) -> None:
    assert scheme_of(stored) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("SHA512-CRYPT", Scheme.SHA512_CRYPT),
        ("sha256-crypt", Scheme.SHA256_CRYPT),
        ("Blf-Crypt", Scheme.BLF_CRYPT),
        ("argon2id", Scheme.ARGON2ID),
        ("ARGON2I", Scheme.ARGON2I),
        ("pbkdf2", Scheme.PBKDF2),
    ],
)
def test_parse_scheme_accepts_writable_schemes_in_any_case(value: str, expected: Scheme) -> None:
    assert parse_scheme(value) is expected


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("SSHA512", "scheme_not_writable"),
        ("ssha256", "scheme_not_writable"),
        ("MD5-CRYPT", "scheme_not_writable"),
        ("crypt", "scheme_not_writable"),
        ("PLAIN", "unknown_scheme"),
        ("", "unknown_scheme"),
        ("SHA512_CRYPT", "unknown_scheme"),
        (" SHA512-CRYPT", "unknown_scheme"),
        ("{SHA512-CRYPT}", "unknown_scheme"),
        ("argon2\u0131", "unknown_scheme"),  # dotless i upper-cases to "I"
    ],
)
def test_parse_scheme_errors(value: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_scheme(value, field="default_scheme")
    assert (caught.value.field, caught.value.rule) == ("default_scheme", rule)


# --- Policy --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "pässwörd✓",
        "🔐🔑🗝️🔒🔓🛡️🧂🥒",
        "пароль-密码-كلمة",
        "tab\tinside ok",
        "  spaces  ",
        "{notascheme}abc",
        "{}" + "x" * 8,
        "😀" * 256,  # 256 characters, 1024 bytes: exactly at both caps
        "$6$looks$like-crypt",
    ],
)
def test_policy_accepts_any_other_unicode(password: str) -> None:
    check_password_policy(password)


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("", "required"),
        ("tiny1", "too_short"),
        ("a" * 257, "too_long"),
        ("😀" * 257, "too_long"),
        ("nul\x00inside", "forbidden_character"),
        ("cr\rinside", "forbidden_character"),
        ("lf\ninside", "forbidden_character"),
        ("crlf-at-end\r\n", "forbidden_character"),
        ("surrogate\udc80x", "forbidden_character"),
        ("{SHA512-CRYPT}$6$abcdefgh$" + "a" * 86, "looks_like_hash"),
        ("{ssha512}AAAAAAAAAAAA", "looks_like_hash"),
        ("{PLAIN}secret-password", "looks_like_hash"),
        ("{SSHA512.HEX}abcdef0123", "looks_like_hash"),
        ("{ARGON2ID}$argon2id$v=19$", "looks_like_hash"),
    ],
)
def test_policy_refuses(password: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_password_policy(password, field="new_password")
    assert (caught.value.field, caught.value.rule) == ("new_password", rule)
    assert password not in caught.value.message or password == ""


def test_policy_limits_are_configurable() -> None:
    check_password_policy("abcd", min_length=4, max_length=4)
    with pytest.raises(ValidationError, match="at least 12"):
        check_password_policy("abcdefghijk", min_length=12)
    with pytest.raises(ValidationError) as caught:
        check_password_policy("abcdefghijk", max_length=10)
    assert caught.value.rule == "too_long"


@pytest.mark.parametrize(
    ("min_length", "max_length"), [(0, 10), (10, 9), (8, 1025)], ids=["min0", "inverted", "huge"]
)
def test_policy_refuses_nonsensical_limits(min_length: int, max_length: int) -> None:
    with pytest.raises(ValueError, match="min_length"):
        check_password_policy("whatever-password", min_length=min_length, max_length=max_length)


def test_policy_checks_length_before_anything_expensive() -> None:
    huge = "a" * 50_000_000
    started = time.perf_counter()
    with pytest.raises(ValidationError) as caught:
        check_password_policy(huge + "\x00")
    assert caught.value.rule == "too_long"
    with pytest.raises(ValidationError):
        hash_password(huge)
    assert time.perf_counter() - started < 0.5


# --- generate_password ---------------------------------------------------------------------------


def test_generated_passwords_are_random_safe_and_pass_the_policy() -> None:
    allowed = set(passwords._GENERATED_ALPHABET)
    seen = set()
    for _ in range(200):
        password = generate_password()
        assert len(password) == 20
        assert set(password) <= allowed
        assert not set(password) & set("0O1lI'\"`$\\ !#&;|<>*?%+=/:@")
        assert password[0].isalnum() and password[-1].isalnum()
        assert any(c.islower() for c in password) and any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password) and any(c in "-_." for c in password)
        check_password_policy(password)
        seen.add(password)
    assert len(seen) == 200


@pytest.mark.parametrize("length", [8, 12, 64, 256])
def test_generated_password_lengths(length: int) -> None:
    assert len(generate_password(length)) == length


@pytest.mark.parametrize("length", [0, 7, 257])
def test_generated_password_length_bounds(length: int) -> None:
    with pytest.raises(ValueError, match="8 to 256"):
        generate_password(length)
