"""Tables of hostile and accepted input for mailwarden.kernel.addresses (docs/security.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.kernel.addresses import (
    MAX_ADDRESS,
    MAX_DOMAIN,
    MAX_LABEL,
    MAX_LOCAL_PART,
    display_address,
    display_domain,
    is_catch_all,
    normalize_address,
    normalize_alias_address,
    normalize_alias_target,
    normalize_domain,
    normalize_local_part,
    split_address,
)
from mailwarden.kernel.errors import ValidationError

LABEL_63 = "a" * 63
DOMAIN_253 = ".".join([LABEL_63, LABEL_63, LABEL_63, "b" * 61])  # 63*3 + 61 + 3 dots
DOMAIN_254 = ".".join([LABEL_63, LABEL_63, LABEL_63, "b" * 62])
DOMAIN_189 = ".".join([LABEL_63, LABEL_63, "c" * 61])  # 64 + 1 + 189 == 254
DOMAIN_190 = ".".join([LABEL_63, LABEL_63, "c" * 62])


def assert_rejected(
    func: Callable[..., object], value: str, field: str, rule: str, /, **kwargs: object
) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        func(value, **kwargs)
    issue = info.value.issues[0]
    assert (issue.field, issue.rule) == (field, rule), issue.message
    # A sentence for an administrator, never echoing raw controls or bidi overrides.
    assert issue.message
    assert all(ch.isprintable() for ch in issue.message), repr(issue.message)
    return info.value


# --- domains ---------------------------------------------------------------------------------

DOMAIN_REJECTS = [
    ("", "required"),
    (" example.com", "whitespace"),
    ("example.com ", "whitespace"),
    ("exa mple.com", "whitespace"),
    ("example.com\n", "whitespace"),
    ("example\u3000com", "whitespace"),
    ("example.com\x00", "control_character"),
    ("exa\x1bmple.com", "control_character"),
    ("exa\x7fmple.com", "control_character"),
    ("example", "single_label"),
    ("com.", "single_label"),
    ("xn--bcher-kva", "single_label"),
    ("a..b.com", "empty_label"),
    (".example.com", "empty_label"),
    ("example.com..", "empty_label"),
    (".", "empty_label"),
    ("-a.example.com", "hyphen_edge"),
    ("a-.example.com", "hyphen_edge"),
    ("example.-com", "hyphen_edge"),
    ("a_b.example.com", "invalid_character"),
    ("_dmarc.example.com", "invalid_character"),
    ("exa!mple.com", "invalid_character"),
    ("*.example.com", "invalid_character"),
    ("user@example.com", "invalid_character"),
    ("example.com:25", "invalid_character"),
    ("bü_cher.example", "invalid_character"),
    ("[example.com]", "invalid_character"),
    ("a" * 64 + ".com", "label_too_long"),
    ("example." + "a" * 64, "label_too_long"),
    ("ü" * 60 + ".example", "label_too_long"),  # fits as U-label, not as xn-- A-label
    (DOMAIN_254, "too_long"),
    (DOMAIN_253 + ".c", "too_long"),
    ("a." * 600 + "com", "too_long"),  # refused before any per-label work
    ("1.2.3.4", "ip_address"),
    ("1.2.3.4.", "ip_address"),
    ("[1.2.3.4]", "ip_address"),
    ("[::1]", "ip_address"),
    ("[IPv6:2001:db8::1]", "ip_address"),
    ("::1", "ip_address"),
    ("2001:db8::1", "ip_address"),
    ("example.123", "ip_address"),
    ("1.2.3", "ip_address"),
    ("2130706433", "ip_address"),
    ("0x7f.0x1", "ip_address"),
    ("localhost", "reserved_name"),
    ("LOCALHOST.", "reserved_name"),
    ("foo.localhost", "reserved_name"),
    ("xn--zz.example", "invalid_idna"),
    ("xn--abc.example", "invalid_idna"),  # decodes to C1 controls
    ("xn--a.example", "invalid_idna"),  # decodes to U+0080
    ("xn--ls8h.example", "invalid_idna"),  # an emoji, DISALLOWED in IDNA 2008
    ("xn--abc-.example", "hyphen_edge"),  # "fake A-label" for plain "abc" ends in '-'
    ("xn---bbk.example", "invalid_idna"),  # non-canonical spelling of a real label
    ("ab--cd.example", "invalid_idna"),
    ("zz--top.example", "invalid_idna"),
    ("e\u0301\u0301\u0301x\u2603.example", "invalid_idna"),  # snowman is DISALLOWED
    ("\u0301a.example", "invalid_idna"),  # leading combining mark
    ("a\U000e0001b.example", "lookalike"),  # Cf tag character
    ("\uff45xample.com", "lookalike"),
    ("example\uff0ecom", "lookalike"),  # full-width full stop
    ("example\u3002com", "lookalike"),  # ideographic full stop
    ("\u212aelvin.example", "lookalike"),  # KELVIN SIGN
    ("exa\u200bmple.com", "lookalike"),
    ("exa\u200dmple.com", "lookalike"),
    ("\ufeffexample.com", "lookalike"),
    ("\u202eexample.com", "lookalike"),
    ("exam\u2066ple.com", "lookalike"),
    ("ex\u00adample.com", "lookalike"),  # soft hyphen
    ("\u0440\u0430ypal.com", "lookalike"),  # Cyrillic er, a + Latin "ypal"
    ("\u0430pple.com", "lookalike"),
    ("xn--ypal-43d9g.com", "lookalike"),  # xn-- form of the mixed label above
    ("g\u043e\u043egle.com", "lookalike"),
    ("日本go.jp", "lookalike"),  # Han + Latin
    ("ωmega.example", "lookalike"),  # Greek + Latin
]


@pytest.mark.parametrize(("value", "rule"), DOMAIN_REJECTS)
def test_normalize_domain_rejects(value: str, rule: str) -> None:
    assert_rejected(normalize_domain, value, "domain", rule)


@pytest.mark.parametrize(("value", "rule"), DOMAIN_REJECTS[:12])
def test_normalize_domain_reports_given_field(value: str, rule: str) -> None:
    assert_rejected(normalize_domain, value, "mail_domain", rule, field="mail_domain")


DOMAIN_ACCEPTS = [
    ("example.com", "example.com"),
    ("Example.COM", "example.com"),
    ("EXAMPLE.COM.", "example.com"),
    ("mail.sub.example.com", "mail.sub.example.com"),
    ("123.example.com", "123.example.com"),
    ("4chan.example", "4chan.example"),
    ("a-b.example.com", "a-b.example.com"),
    ("example.photography", "example.photography"),
    ("example.international", "example.international"),
    ("bücher.example", "xn--bcher-kva.example"),
    ("Bücher.Example.", "xn--bcher-kva.example"),
    ("BÜCHER.example", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example"),
    ("bu\u0308cher.example", "xn--bcher-kva.example"),  # NFD spelling of the same name
    ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
    ("xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),
    ("日本語.jp", "xn--wgv71a119e.jp"),
    ("ドメイン名例.jp", "xn--eckwd4c7cu47r2wf.jp"),
    ("ひらがな漢字カタカナ.jp", "xn--v8j0cwa6gzha3lrd7410cymwb.jp"),  # Han + kana
    ("한국어.kr", "xn--3e0bk47br7k.kr"),
    ("中文123-字.cn", "xn--123--zf5fl11eqjq.cn"),  # digits and hyphen mix with any script
    ("straße.de", "xn--strae-oqa.de"),
    ("col·legi.cat", "xn--collegi-xma.cat"),
    ("παράδειγμα.δοκιμή", "xn--hxajbheg2az3al.xn--jxalpdlp"),
    (LABEL_63 + ".com", LABEL_63 + ".com"),
    (DOMAIN_253, DOMAIN_253),
    (DOMAIN_253 + ".", DOMAIN_253),
]


@pytest.mark.parametrize(("value", "expected"), DOMAIN_ACCEPTS)
def test_normalize_domain_accepts(value: str, expected: str) -> None:
    assert normalize_domain(value) == expected
    assert normalize_domain(expected) == expected


def test_idn_unicode_and_ascii_forms_are_one_record() -> None:
    assert normalize_domain("Bücher.Example") == normalize_domain("xn--BCHER-kva.example.")


def test_display_domain() -> None:
    assert display_domain("xn--bcher-kva.example") == "bücher.example"
    assert display_domain("example.com") == "example.com"
    # Undecodable or lookalike names are shown as stored, never as a convincing spoof.
    assert display_domain("xn--zz.example") == "xn--zz.example"
    assert display_domain("xn--ypal-43d9g.com") == "xn--ypal-43d9g.com"
    assert display_domain("") == ""


# --- addresses -------------------------------------------------------------------------------

ADDRESS_REJECTS = [
    ("", "required"),
    ("a@", "required"),
    ("user", "at_sign"),
    ("user.example.com", "at_sign"),
    ("a@b@c", "at_sign"),
    ("a@b@example.com", "at_sign"),
    ("@example.com", "empty_local_part"),
    ("@", "empty_local_part"),
    ("a..b@example.com", "dot_placement"),
    (".a@example.com", "dot_placement"),
    ("a.@example.com", "dot_placement"),
    (" a@b.com", "whitespace"),
    ("a@b.com ", "whitespace"),
    ("a b@example.com", "whitespace"),
    ("a\nb@example.com", "whitespace"),
    ("a@example.com\r\n", "whitespace"),
    ("a\tb@example.com", "whitespace"),
    ("a\u00a0b@example.com", "whitespace"),
    ("a\x00@example.com", "control_character"),
    ("a\x1b[31m@example.com", "control_character"),
    ('"a b"@example.com', "quoted_local_part"),
    ('"a"@example.com', "quoted_local_part"),
    ('"a@b"@example.com', "quoted_local_part"),
    ("@a.com,@b.com:u@c.com", "source_route"),
    ("@relay.example:user@example.com", "source_route"),
    ("a%b@example.com", "routing_character"),
    ("a!b@example.com", "routing_character"),
    ("host!user", "routing_character"),
    ("u@[1.2.3.4]", "domain_literal"),
    ("u@[IPv6:::1]", "domain_literal"),
    ("x" * (MAX_LOCAL_PART + 1) + "@example.com", "local_part_too_long"),
    ("a." * 40 + "b@example.com", "local_part_too_long"),
    ("x" * MAX_LOCAL_PART + "@" + DOMAIN_190, "too_long"),
    ("ab@" + DOMAIN_253, "too_long"),
    ("a" * 5000 + "@example.com", "too_long"),
    ("a|b@example.com", "invalid_character"),
    ("a:b@example.com", "invalid_character"),
    ("a,b@example.com", "invalid_character"),
    ("a;b@example.com", "invalid_character"),
    ('a"b@example.com', "invalid_character"),
    ("a'b@example.com", "invalid_character"),
    ("a`b@example.com", "invalid_character"),
    ("a\\b@example.com", "invalid_character"),
    ("a/b@example.com", "invalid_character"),
    ("<a@example.com>", "invalid_character"),
    ("a(b)@example.com", "invalid_character"),
    ("a[b]@example.com", "invalid_character"),
    ("a{b}@example.com", "invalid_character"),
    ("a$b@example.com", "invalid_character"),
    ("a&b@example.com", "invalid_character"),
    ("a*b@example.com", "invalid_character"),
    ("a?b@example.com", "invalid_character"),
    ("a#b@example.com", "invalid_character"),
    ("a~b@example.com", "invalid_character"),
    ("a^b@example.com", "invalid_character"),
    ("a+b@example.com", "invalid_character"),  # plus-addressing only in targets
    ("-a@example.com", "invalid_character"),  # Postfix allow_min_user = no
    ("\uff41@example.com", "non_ascii_local_part"),  # full-width a
    ("jürgen@example.com", "non_ascii_local_part"),
    ("a\u200b@example.com", "non_ascii_local_part"),
    ("\u202eab@example.com", "non_ascii_local_part"),
    ("\u0430dmin@example.com", "non_ascii_local_part"),  # Cyrillic a
    # Domain rules apply to the domain part, reported under the address field.
    ("a@localhost", "reserved_name"),
    ("a@example", "single_label"),
    ("a@1.2.3.4", "ip_address"),
    ("a@a_b.example.com", "invalid_character"),
    ("a@\uff45xample.com", "lookalike"),
    ("a@\u0440\u0430ypal.com", "lookalike"),
    ("a@xn--zz.example", "invalid_idna"),
    ("a@-a.example", "hyphen_edge"),
    ("a@a..example", "empty_label"),
]


@pytest.mark.parametrize(("value", "rule"), ADDRESS_REJECTS)
def test_normalize_address_rejects(value: str, rule: str) -> None:
    assert_rejected(normalize_address, value, "address", rule)


@pytest.mark.parametrize(
    ("value", "rule"), [("a@a_b.example.com", "invalid_character"), ("a@b@c", "at_sign")]
)
def test_normalize_address_reports_given_field(value: str, rule: str) -> None:
    assert_rejected(normalize_address, value, "recipient", rule, field="recipient")


def test_non_ascii_local_part_message_says_smtputf8_unsupported() -> None:
    error = assert_rejected(
        normalize_address, "jürgen@example.com", "address", "non_ascii_local_part"
    )
    assert "SMTPUTF8" in error.issues[0].message


ADDRESS_ACCEPTS = [
    ("user@example.com", "user@example.com"),
    ("John.Doe@Example.COM", "john.doe@example.com"),
    ("john.doe@example.com.", "john.doe@example.com"),
    ("a_b-c@mail.sub.example.com", "a_b-c@mail.sub.example.com"),
    ("123@123.example.com", "123@123.example.com"),
    ("info@example.photography", "info@example.photography"),
    ("info@Bücher.example", "info@xn--bcher-kva.example"),
    ("info@xn--bcher-kva.example", "info@xn--bcher-kva.example"),
    ("SRS0=HHH=TT=example.org=user@example.com", "srs0=hhh=tt=example.org=user@example.com"),
    ("x" * MAX_LOCAL_PART + "@example.com", "x" * MAX_LOCAL_PART + "@example.com"),
    ("x" * MAX_LOCAL_PART + "@" + DOMAIN_189, "x" * MAX_LOCAL_PART + "@" + DOMAIN_189),
]


@pytest.mark.parametrize(("value", "expected"), ADDRESS_ACCEPTS)
def test_normalize_address_accepts(value: str, expected: str) -> None:
    assert normalize_address(value) == expected
    assert normalize_address(expected) == expected
    assert len(expected) <= MAX_ADDRESS


def test_plus_is_accepted_only_when_asked() -> None:
    assert normalize_address("A+Tag@Example.com", allow_plus=True) == "a+tag@example.com"
    assert_rejected(normalize_address, "a+tag@example.com", "address", "invalid_character")


def test_display_and_split_address() -> None:
    assert display_address("info@xn--bcher-kva.example") == "info@bücher.example"
    assert display_address("@xn--bcher-kva.example") == "@bücher.example"
    assert display_address("not-an-address") == "not-an-address"
    assert split_address("info@xn--bcher-kva.example") == ("info", "xn--bcher-kva.example")
    assert split_address("@example.com") == ("", "example.com")
    assert_rejected(split_address, "nodomain", "address", "at_sign")


# --- local parts -----------------------------------------------------------------------------

LOCAL_REJECTS = [
    ("", "required"),
    (" a", "whitespace"),
    ("a\n", "whitespace"),
    ("a\x00", "control_character"),
    ("a\x07", "control_character"),
    ('"a b"', "quoted_local_part"),
    ('"a"', "quoted_local_part"),
    ("a%b", "routing_character"),
    ("a!b", "routing_character"),
    ("a@b", "invalid_character"),
    ("a+b", "invalid_character"),
    ("a|b", "invalid_character"),
    ("a..b", "dot_placement"),
    (".a", "dot_placement"),
    ("a" * 65, "local_part_too_long"),
    ("b" * 100, "local_part_too_long"),
    ("c" * 5000, "local_part_too_long"),
    ("\uff41", "non_ascii_local_part"),
    ("ü", "non_ascii_local_part"),
]


@pytest.mark.parametrize(("value", "rule"), LOCAL_REJECTS)
def test_normalize_local_part_rejects(value: str, rule: str) -> None:
    assert_rejected(normalize_local_part, value, "local_part", rule)


@pytest.mark.parametrize(
    ("value", "expected"), [("John.Doe", "john.doe"), ("a_b-c=d", "a_b-c=d"), ("x" * 64, "x" * 64)]
)
def test_normalize_local_part_accepts(value: str, expected: str) -> None:
    assert normalize_local_part(value) == expected


# --- alias addresses -------------------------------------------------------------------------

ALIAS_ADDRESS_REJECTS = [
    ("", "required"),
    ("@", "required"),
    ("@localhost", "reserved_name"),
    ("@example", "single_label"),
    ("@[1.2.3.4]", "domain_literal"),
    ("@a.com:u@b.com", "source_route"),
    ("@a.com,@b.com:u@c.com", "source_route"),
    (" @example.com", "whitespace"),
    ("@example.com\n", "whitespace"),
    ("@\uff45xample.com", "lookalike"),
    ("a+b@example.com", "invalid_character"),
    ("a@b@c", "at_sign"),
]


@pytest.mark.parametrize(("value", "rule"), ALIAS_ADDRESS_REJECTS)
def test_normalize_alias_address_rejects(value: str, rule: str) -> None:
    assert_rejected(normalize_alias_address, value, "address", rule)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@Example.COM", "@example.com"),
        ("@example.com.", "@example.com"),
        ("@Bücher.example", "@xn--bcher-kva.example"),
        ("@xn--bcher-kva.example", "@xn--bcher-kva.example"),
        ("Sales@Example.com", "sales@example.com"),
    ],
)
def test_normalize_alias_address_accepts(value: str, expected: str) -> None:
    assert normalize_alias_address(value) == expected
    assert normalize_alias_address(expected) == expected


def test_is_catch_all() -> None:
    assert is_catch_all("@example.com")
    assert not is_catch_all("a@example.com")
    assert not is_catch_all("@")
    assert not is_catch_all("@a@example.com")


# --- alias targets ---------------------------------------------------------------------------

TARGET_REJECTS = [
    ("", "required"),
    ("|/usr/bin/procmail", "pipe_target"),
    ('"|/usr/local/bin/script arg"', "pipe_target"),
    (" |cmd", "pipe_target"),
    ("/var/mail/x", "file_target"),
    ("./x", "file_target"),
    ("../mbox", "file_target"),
    ("~/mbox", "file_target"),
    (":include:/etc/mail/list", "include_target"),
    (":INCLUDE:/etc/mail/list", "include_target"),
    ('":include:/etc/mail/list"', "include_target"),
    ("postmaster", "unqualified_target"),
    ("root", "unqualified_target"),
    ("host!user", "routing_character"),
    ("a%b@example.com", "routing_character"),
    (" a@example.com", "whitespace"),
    ("a@example.com\n", "whitespace"),
    ("a\x00@example.com", "control_character"),
    ("@example.com", "empty_local_part"),
    ("a@b@example.com", "at_sign"),
    ("a|b@example.com", "invalid_character"),
    ("a@localhost", "reserved_name"),
    ("a@\u0440\u0430ypal.com", "lookalike"),
    ("\uff41@example.com", "non_ascii_local_part"),
    ('"a b"@example.com', "quoted_local_part"),
    ("u@[1.2.3.4]", "domain_literal"),
]


@pytest.mark.parametrize(("value", "rule"), TARGET_REJECTS)
def test_normalize_alias_target_rejects(value: str, rule: str) -> None:
    assert_rejected(normalize_alias_target, value, "target", rule)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("User+Tag@Example.com", "user+tag@example.com"),
        ("user+tag+more@example.com.", "user+tag+more@example.com"),
        ("a@Bücher.example", "a@xn--bcher-kva.example"),
        ("owner-list@lists.example.org", "owner-list@lists.example.org"),
    ],
)
def test_normalize_alias_target_accepts(value: str, expected: str) -> None:
    assert normalize_alias_target(value) == expected
    assert normalize_alias_target(expected) == expected


def test_target_field_is_passed_through() -> None:
    assert_rejected(normalize_alias_target, "root", "goto", "unqualified_target", field="goto")


def test_limits() -> None:
    assert (MAX_LOCAL_PART, MAX_ADDRESS, MAX_DOMAIN, MAX_LABEL) == (64, 254, 253, 63)


# --- properties ------------------------------------------------------------------------------

_TRICKY = (
    "aAzZ09.-_+=%!@\"' \t\n\x00|:;,/\\[]()<>"
    "üßж\u0430\u0440日本\uff45\u200b\u202e\u3002\uff0eK\u212a"
)
_label = st.text(alphabet="abcXYZ019-üж\u0430日\uff45", min_size=0, max_size=12)
_domains = st.lists(_label, min_size=1, max_size=4).map(".".join) | st.sampled_from(
    ["example.com", "Bücher.example", "xn--bcher-kva.example", "1.2.3.4", "localhost."]
)
_locals = st.text(alphabet='abcXYZ09._-+=%!ü"', min_size=0, max_size=12)
_texts = (
    st.text(max_size=40)
    | st.text(alphabet=_TRICKY, max_size=30)
    | st.builds(lambda lp, d: f"{lp}@{d}", _locals, _domains)
)


@settings(max_examples=300, deadline=None)
@given(_texts, st.booleans())
def test_normalize_address_is_ascii_lowercase_fixed_point(value: str, allow_plus: bool) -> None:
    try:
        result = normalize_address(value, allow_plus=allow_plus)
    except ValidationError as exc:
        assert exc.issues and exc.issues[0].field == "address"
        return
    assert result.isascii()
    assert result == result.lower()
    assert result.count("@") == 1
    assert len(result) <= MAX_ADDRESS
    assert normalize_address(result, allow_plus=allow_plus) == result


@settings(max_examples=300, deadline=None)
@given(_domains | st.text(max_size=30) | st.text(alphabet=_TRICKY, max_size=30))
def test_normalize_domain_is_fixed_point(value: str) -> None:
    try:
        result = normalize_domain(value)
    except ValidationError as exc:
        assert exc.issues and exc.issues[0].field == "domain"
        return
    assert result.isascii()
    assert result == result.lower()
    assert len(result) <= MAX_DOMAIN
    assert normalize_domain(result) == result
