"""Normalization and validation of domains, addresses, alias addresses and alias targets.

Postfix and Dovecot find our rows with plain SQL equality, so a name has exactly one stored
spelling: domains as lowercase ASCII (IDNA 2008 A-labels, ``xn--...``), addresses as lowercase
``local@ascii-domain``. Anything that could make two spellings of "the same" name, smuggle routing
syntax into a lookup table, or trick an administrator with a lookalike is rejected here, with a
stable rule slug (see docs/security.md, "Input rules").

Every function is pure (no database, no settings) so that every face (CLI, API, web, import)
runs the very same checks. Checks are ordered so that the first reported rule is the most
specific one: "a@b@c" is an ``at_sign`` problem, not an ``invalid_character`` one.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

import idna

from mailwarden.kernel.errors import ValidationError

__all__ = [
    "MAX_ADDRESS",
    "MAX_DOMAIN",
    "MAX_LABEL",
    "MAX_LOCAL_PART",
    "display_address",
    "display_domain",
    "is_catch_all",
    "normalize_address",
    "normalize_alias_address",
    "normalize_alias_target",
    "normalize_domain",
    "normalize_local_part",
    "split_address",
]

# RFC 5321 4.5.3.1 limits, in octets. Stored forms are ASCII, so octets == characters.
MAX_LOCAL_PART = 64
MAX_ADDRESS = 254
MAX_DOMAIN = 253
MAX_LABEL = 63

_LDH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_DIGITS = frozenset("0123456789")
# '=' is kept because SRS and VERP addresses use it; '+' only where plus-addressing is meant.
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-=")
_LOCAL_CHARS_PLUS = _LOCAL_CHARS | {"+"}
# Whitespace that is a C0/C1 control too (\t, \n, ...) is reported as whitespace: an
# administrator recognises "contains a line break" more easily than "control character".
_WHITESPACE_CONTROLS = frozenset("\t\n\v\f\r\x85")
# Looks like a dot to a reader but is not a DNS label separator for IDNA 2008. The other
# dot lookalikes (U+FF0E, U+FF61) are compatibility characters and caught by the NFKC check.
_DOT_LOOKALIKES = frozenset("\u3002")
# inet_aton() accepts hexadecimal parts, so "0x7f.1" can be read as an IP address.
_HEX_NUMBER = re.compile(r"0x[0-9a-f]*")
# Script groups that legitimately mix inside one label (Japanese, Korean writing).
_ALLOWED_SCRIPT_MIXES = (
    frozenset({"HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"HAN", "HANGUL"}),
)
# First words of Unicode character names that do not name the script themselves.
_SCRIPT_ALIASES = {
    "CJK": "HAN",
    "IDEOGRAPHIC": "HAN",
    "KATAKANA-HIRAGANA": "KATAKANA",
    "ARABIC-INDIC": "ARABIC",
}
_MAX_SHOWN = 80
# No acceptable input comes near this length, even a Unicode domain typed in decomposed (NFD)
# form; refusing earlier keeps hostile megabyte input from costing seconds of per-character
# and Punycode work.
_MAX_INPUT = 1024
# unicodedata has no names for C0/C1 controls; these are the ones people actually paste.
_CONTROL_NAMES = {
    "\x00": "NUL",
    "\t": "TAB",
    "\n": "LINE FEED",
    "\v": "VERTICAL TAB",
    "\f": "FORM FEED",
    "\r": "CARRIAGE RETURN",
    "\x1b": "ESCAPE",
    "\x7f": "DELETE",
    "\x85": "NEXT LINE",
}


# --- message helpers -------------------------------------------------------------------------


def _show(value: str) -> str:
    """Quote user input for a message without letting it carry controls or bidi overrides.

    Messages end up in terminals, logs and HTML; an echoed U+202E or newline would garble them.
    """
    return "'" + _escape(value) + "'"


def _escape(value: str) -> str:
    """Shorten and escape text so that only printable, non-formatting characters remain."""
    if len(value) > _MAX_SHOWN:
        value = value[: _MAX_SHOWN - 3] + "..."
    out = []
    for ch in value:
        if ch.isprintable() and unicodedata.category(ch) != "Cf":
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def describe_character(ch: str) -> str:
    """'U+200B ZERO WIDTH SPACE' style name for a single character."""
    name = unicodedata.name(ch, "") or _CONTROL_NAMES.get(ch, "")
    code = f"U+{ord(ch):04X}"
    return f"{code} {name}" if name else code


# --- shared character checks -----------------------------------------------------------------


def _check_required(value: str, field: str, what: str, too_long_rule: str = "too_long") -> None:
    if value == "":
        raise ValidationError(field, "required", f"{what} is required")
    if len(value) > _MAX_INPUT:
        raise ValidationError(
            field,
            too_long_rule,
            f"{what} {_show(value)} is {len(value)} characters long, far over any valid length",
        )


def _check_whitespace_and_controls(value: str, field: str, what: str) -> None:
    """Reject whitespace and control characters anywhere; we never trim silently.

    Trimming would make " a@b.com" and "a@b.com" the same input in one face and different
    ones in another (e.g. an import that does not trim), so the input is refused instead.
    """
    for ch in value:
        category = unicodedata.category(ch)
        if ch in _WHITESPACE_CONTROLS or category in ("Zs", "Zl", "Zp"):
            raise ValidationError(
                field,
                "whitespace",
                f"{what} {_show(value)} contains whitespace ({describe_character(ch)}); "
                "remove spaces, tabs and line breaks",
            )
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cc":
            raise ValidationError(
                field,
                "control_character",
                f"{what} {_show(value)} contains the control character {describe_character(ch)}",
            )
        if category == "Cs":
            raise ValidationError(
                field,
                "control_character",
                f"{what} {_show(value)} contains a lone surrogate ({describe_character(ch)}), "
                "which is not a character",
            )


def _lookalike_character(value: str, field: str, what: str) -> None:
    """Reject characters that render invisibly or like another character.

    Zero-width and bidi controls (category Cf) hide or reorder text; full-width and other
    compatibility forms (char != NFKC(char)) look like plain letters but are other code points.
    """
    for ch in value:
        if unicodedata.category(ch) == "Cf":
            raise ValidationError(
                field,
                "lookalike",
                f"{what} {_show(value)} contains the invisible formatting character "
                f"{describe_character(ch)} (zero-width or bidi control); remove it",
            )
        if ch in _DOT_LOOKALIKES:
            raise ValidationError(
                field,
                "lookalike",
                f"{what} {_show(value)} contains {describe_character(ch)}, which looks like a "
                "dot but is not one; type a plain '.'",
            )
        folded = unicodedata.normalize("NFKC", ch)
        if folded != ch:
            raise ValidationError(
                field,
                "lookalike",
                f"{what} {_show(value)} contains {describe_character(ch)}, a full-width or "
                f"compatibility form of {_show(folded)}; type the plain character",
            )


def _script(ch: str) -> str | None:
    """Approximate Unicode script of a character, or None for script-neutral characters.

    The standard library has no Script property; the first word of the character name names
    the script for every letter IDNA 2008 allows ("LATIN SMALL LETTER A", "CYRILLIC SMALL
    LETTER ER", "CJK UNIFIED IDEOGRAPH-4E00"). Unknown first words count as a script of their
    own, which errs on the side of rejecting a mix. Non-ASCII digits belong to their script,
    as in Unicode (a Bengali four looks like an 8).
    """
    if ch == "-" or ch in _DIGITS:
        return None
    category = unicodedata.category(ch)
    if not (category.startswith("L") or category in ("Mc", "Nd")):
        # Combining marks (Mn, Me) inherit the script of their base; symbols and punctuation
        # belong to no script, and IDNA rejects nearly all of them with a clearer message.
        return None
    if ch == "\u00b7":
        return None  # Catalan "l·l"; IDNA CONTEXTO already confines it to between two 'l'
    name = unicodedata.name(ch, "")
    if not name:
        return None  # unassigned or control: IDNA rejects it with a better message
    first = name.split(" ", 1)[0]
    return _SCRIPT_ALIASES.get(first, first)


def _check_mixed_script(ulabel: str, field: str, domain: str) -> None:
    scripts = {s for s in map(_script, ulabel) if s is not None}
    if len(scripts) <= 1 or any(scripts <= allowed for allowed in _ALLOWED_SCRIPT_MIXES):
        return
    names = ", ".join(sorted(s.title() for s in scripts))
    raise ValidationError(
        field,
        "lookalike",
        f"domain {_show(domain)}: label {_show(ulabel)} mixes scripts ({names}), a common "
        "lookalike trick (e.g. Cyrillic '\u0430' for Latin 'a'); use one script per label",
    )


# --- domains ---------------------------------------------------------------------------------


def _invalid_idna(field: str, domain: str, label: str, why: str) -> ValidationError:
    return ValidationError(
        field,
        "invalid_idna",
        f"domain {_show(domain)}: label {_show(label)} is not valid IDNA 2008 ({_escape(why)})",
    )


def _label_too_long(field: str, domain: str, label: str, octets: int) -> ValidationError:
    return ValidationError(
        field,
        "label_too_long",
        f"domain {_show(domain)}: label {_show(label)} is {octets} octets long in its xn-- "
        f"form; a DNS label may have at most {MAX_LABEL}",
    )


def _check_unicode_label(ulabel: str, field: str, domain: str, typed: str) -> str:
    """Validate a Unicode label and return its A-label; `typed` is the label as given."""
    _lookalike_character(ulabel, field, f"domain {_show(domain)}: label")
    _check_mixed_script(ulabel, field, domain)
    try:
        idna.check_label(ulabel)
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise _invalid_idna(field, domain, typed, str(exc)) from None
    try:
        alabel = "xn--" + ulabel.encode("punycode").decode("ascii")
    except UnicodeError as exc:
        raise _invalid_idna(field, domain, typed, str(exc)) from None
    if len(alabel) > MAX_LABEL:
        raise _label_too_long(field, domain, typed, len(alabel))
    return alabel


def _ascii_label(label: str, field: str, domain: str) -> str:
    """Validate an ASCII label (plain LDH or xn--) and return it."""
    if label.startswith("xn--"):
        try:
            ulabel = label[4:].encode("ascii").decode("punycode")
        except UnicodeError:
            raise _invalid_idna(field, domain, label, "not decodable Punycode") from None
        if ulabel.isascii():
            # RFC 5890 2.3.2.1 "fake A-label": decodes to plain ASCII (or nothing).
            raise _invalid_idna(field, domain, label, "the xn-- form encodes no Unicode")
        alabel = _check_unicode_label(ulabel, field, domain, label)
        if alabel != label:
            # Two spellings of one name would be two rows; only the canonical one is stored.
            raise _invalid_idna(
                field, domain, label, f"not the canonical Punycode form; that is {alabel!r}"
            )
        return label
    if label[2:4] == "--":
        # RFC 5891 4.2.3.1: "??--" is reserved for ACE prefixes other than xn--.
        raise _invalid_idna(field, domain, label, "'--' in positions 3 and 4 is reserved")
    return label


def normalize_domain(value: str, field: str = "domain") -> str:
    """Return the stored form of a domain: lowercase ASCII A-labels, no trailing dot.

    "Example.COM.", "example.com", "bücher.example" and "xn--bcher-kva.example" each have
    exactly one stored spelling, so SQL equality finds them whichever form was typed.
    """
    _check_required(value, field, "domain")
    _check_whitespace_and_controls(value, field, "domain")

    # One trailing dot is the fully qualified spelling of the same name.
    name = value[:-1] if value.endswith(".") else value
    if name == "":
        raise ValidationError(
            field, "empty_label", f"domain {_show(value)} has no labels; '.' is the DNS root"
        )

    if name.startswith("[") or name.endswith("]"):
        inner = name.strip("[]")
        if inner[:5].lower() == "ipv6:":
            inner = inner[5:]
        try:
            ipaddress.ip_address(inner)
        except ValueError:
            raise ValidationError(
                field,
                "invalid_character",
                f"domain {_show(value)} contains '[' or ']'; a domain is a host name such "
                "as example.com",
            ) from None
        raise ValidationError(
            field,
            "ip_address",
            f"domain {_show(value)} is an IP address literal; mail domains must be names",
        )
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise ValidationError(
            field, "ip_address", f"domain {_show(value)} is an IP address; use a domain name"
        )

    # Before any normalization: NFC and lower() would quietly turn e.g. U+212A KELVIN SIGN
    # into 'k', hiding the trick instead of reporting it.
    _lookalike_character(name, field, "domain")
    name = unicodedata.normalize("NFC", name).lower()

    labels = name.split(".")
    for label in labels:
        if label == "":
            raise ValidationError(
                field,
                "empty_label",
                f"domain {_show(value)} has an empty label (a leading dot or '..')",
            )

    # Resolvers read an all-numeric last label (and inet_aton's hex parts) as an address:
    # "1.2.3", "10.1" and "0x7f.1" all reach some IP.
    last = labels[-1]
    if all(ch in _DIGITS for ch in last) or _HEX_NUMBER.fullmatch(last):
        raise ValidationError(
            field,
            "ip_address",
            f"domain {_show(value)} ends in the numeric label {_show(last)} and would be read "
            "as an IP address; top-level domains are never numeric",
        )

    for label in labels:
        for ch in label:
            if ch.isascii() and ch not in _LDH:
                raise ValidationError(
                    field,
                    "invalid_character",
                    f"domain label {_show(label)} contains {_show(ch)}; labels may use "
                    "letters, digits and '-'",
                )
        if label.startswith("-") or label.endswith("-"):
            raise ValidationError(
                field,
                "hyphen_edge",
                f"domain label {_show(label)} starts or ends with '-'; a hyphen may only "
                "appear inside a label",
            )
        # Cheap bound before any IDNA work (Punycode is slow on huge input): an A-label is
        # never shorter than its U-label.
        if len(label) > MAX_LABEL:
            raise ValidationError(
                field,
                "label_too_long",
                f"domain {_show(value)}: label {_show(label)} is {len(label)} characters long; "
                f"a DNS label may have at most {MAX_LABEL} octets",
            )

    if last == "localhost":
        raise ValidationError(
            field,
            "reserved_name",
            f"domain {_show(value)} is reserved (RFC 6761 'localhost') and never a mail domain",
        )
    if len(labels) == 1:
        raise ValidationError(
            field,
            "single_label",
            f"domain {_show(value)} has a single label; use a fully qualified name such as "
            f"{_show(labels[0] + '.example')}",
        )

    alabels = [
        _ascii_label(label, field, value)
        if label.isascii()
        else _check_unicode_label(label, field, value, label)
        for label in labels
    ]
    result = ".".join(alabels)
    if len(result) > MAX_DOMAIN:
        raise ValidationError(
            field,
            "too_long",
            f"domain {_show(value)} is {len(result)} octets long"
            f"{' in its xn-- form' if not name.isascii() else ''}; "
            f"a domain name may have at most {MAX_DOMAIN}",
        )
    return result


def display_domain(ascii_domain: str) -> str:
    """Unicode form of a stored domain, for people; the input unchanged if it cannot decode.

    Only names that pass normalize_domain are decoded, so a lookalike smuggled into the
    database some other way is shown in its revealing xn-- form, as browsers do.
    """
    try:
        normalized = normalize_domain(ascii_domain)
        return idna.decode(normalized)
    except (ValidationError, idna.IDNAError, UnicodeError, ValueError):
        return ascii_domain


# --- addresses -------------------------------------------------------------------------------


def _check_local(local: str, field: str, allow_plus: bool) -> str:
    """The local-part rules on a non-empty local part; returns it lowercased."""
    for ch in local:
        if not ch.isascii():
            raise ValidationError(
                field,
                "non_ascii_local_part",
                f"local part {_show(local)} contains the non-ASCII character "
                f"{describe_character(ch)}; internationalized (SMTPUTF8) local parts are not "
                "supported, use ASCII letters and digits",
            )
    for ch in local:
        if ch in "%!":
            raise ValidationError(
                field,
                "routing_character",
                f"local part {_show(local)} contains {_show(ch)}, which requests "
                "'%'/'!' source routing; it is not allowed",
            )
    allowed = _LOCAL_CHARS_PLUS if allow_plus else _LOCAL_CHARS
    for ch in local:
        if ch not in allowed:
            if ch == "+":
                why = "plus-addressing ('+') is only accepted in alias targets"
            elif ch == "@":
                why = "a local part cannot contain '@'"
            else:
                extra = ", '+'" if allow_plus else ""
                why = f"local parts may use letters, digits and '.', '_', '-', '='{extra}"
            raise ValidationError(
                field,
                "invalid_character",
                f"local part {_show(local)} contains {_show(ch)}; {why}",
            )
    if local.startswith("-"):
        # Postfix refuses such addresses by default (allow_min_user = no): on a command
        # line they read as options, so they could not receive mail anyway.
        raise ValidationError(
            field,
            "invalid_character",
            f"local part {_show(local)} starts with '-', which commands would read as an "
            "option and Postfix rejects (allow_min_user = no)",
        )
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValidationError(
            field,
            "dot_placement",
            f"local part {_show(local)} starts or ends with '.' or contains '..'; dots may "
            "only separate characters",
        )
    if len(local) > MAX_LOCAL_PART:
        raise ValidationError(
            field,
            "local_part_too_long",
            f"local part {_show(local)} is {len(local)} octets long; the limit is {MAX_LOCAL_PART}",
        )
    return local.lower()


def _is_quoted(value: str) -> bool:
    local = value.rpartition("@")[0] if "@" in value else value
    return value.startswith('"') or local.endswith('"')


def normalize_local_part(value: str, field: str = "local_part") -> str:
    """The local-part rules alone (e.g. a mailbox name typed next to a domain picker)."""
    _check_required(value, field, "local part", "local_part_too_long")
    if _is_quoted(value):
        raise ValidationError(
            field,
            "quoted_local_part",
            f"local part {_show(value)} is quoted; quoted local parts are not supported",
        )
    _check_whitespace_and_controls(value, field, "local part")
    return _check_local(value, field, allow_plus=False)


def _address_structure(value: str, field: str) -> None:
    """Checks on the whole address that name a syntax, before any character is judged."""
    if _is_quoted(value):
        raise ValidationError(
            field,
            "quoted_local_part",
            f"address {_show(value)} has a quoted local part; quoted local parts are not supported",
        )
    if value.startswith("@") and ":" in value:
        raise ValidationError(
            field,
            "source_route",
            f"address {_show(value)} is a source route ('@relay:user@domain'); source routes "
            "are not allowed",
        )
    _check_whitespace_and_controls(value, field, "address")
    if "@[" in value:
        raise ValidationError(
            field,
            "domain_literal",
            f"address {_show(value)} uses a domain literal ('[...]'); use a domain name",
        )
    for ch in value:
        if ch in "%!":
            raise ValidationError(
                field,
                "routing_character",
                f"address {_show(value)} contains {_show(ch)}, which requests '%'/'!' "
                "routing; it is not allowed",
            )


def _check_total_length(address: str, value: str, field: str) -> None:
    if len(address) > MAX_ADDRESS:
        raise ValidationError(
            field,
            "too_long",
            f"address {_show(value)} is {len(address)} octets long; the limit is {MAX_ADDRESS}",
        )


def normalize_address(value: str, field: str = "address", *, allow_plus: bool = False) -> str:
    """Return the stored form of a full address: lowercase ``local@ascii-domain``."""
    _check_required(value, field, "address")
    _address_structure(value, field)
    at_signs = value.count("@")
    if at_signs == 0:
        raise ValidationError(
            field, "at_sign", f"address {_show(value)} has no '@'; write it as local@domain"
        )
    if at_signs > 1:
        raise ValidationError(
            field,
            "at_sign",
            f"address {_show(value)} contains {at_signs} '@' signs; an address has exactly one",
        )
    local, _, domain = value.partition("@")
    if local == "":
        raise ValidationError(
            field,
            "empty_local_part",
            f"address {_show(value)} has nothing before '@' (catch-all '@domain' is only "
            "accepted as an alias address)",
        )
    if domain == "":
        raise ValidationError(
            field, "required", f"address {_show(value)} has nothing after '@'; a domain is needed"
        )
    normalized_local = _check_local(local, field, allow_plus)
    address = f"{normalized_local}@{normalize_domain(domain, field)}"
    _check_total_length(address, value, field)
    return address


def display_address(address: str) -> str:
    """A stored address with its domain in Unicode, for people."""
    local, sep, domain = address.rpartition("@")
    if not sep:
        return address
    return f"{local}@{display_domain(domain)}"


def split_address(address: str) -> tuple[str, str]:
    """Split a normalized address into (local, domain); a catch-all gives ("", domain)."""
    local, sep, domain = address.rpartition("@")
    if not sep or not domain:
        raise ValidationError(
            "address", "at_sign", f"address {_show(address)} has no '@domain' part"
        )
    return local, domain


def normalize_alias_address(value: str, field: str = "address") -> str:
    """Like normalize_address, but "@domain" (a catch-all alias) is accepted as well."""
    _check_required(value, field, "address")
    if value.startswith("@") and value.count("@") == 1 and ":" not in value:
        _check_whitespace_and_controls(value, field, "address")
        domain = value[1:]
        if domain == "":
            raise ValidationError(
                field,
                "required",
                "catch-all address '@' needs a domain, as in '@example.com'",
            )
        if domain.startswith("["):
            raise ValidationError(
                field,
                "domain_literal",
                f"address {_show(value)} uses a domain literal ('[...]'); use a domain name",
            )
        return "@" + normalize_domain(domain, field)
    return normalize_address(value, field)


def is_catch_all(address: str) -> bool:
    """True for a stored catch-all alias address ("@domain")."""
    return address.startswith("@") and address.count("@") == 1 and len(address) > 1


def normalize_alias_target(value: str, field: str = "target") -> str:
    """Return the stored form of one alias delivery target (a full address, '+' allowed).

    Pipes, files and :include: are local(8) delivery features of aliases(5) files; in a
    virtual alias table they must never be stored, whatever quoting or spacing surrounds them.
    """
    _check_required(value, field, "target")
    probe = value.lstrip(' \t"')
    if probe.startswith("|"):
        raise ValidationError(
            field,
            "pipe_target",
            f"target {_show(value)} pipes mail to a command; only addresses are allowed",
        )
    if probe.startswith(("/", "./", "../", "~/")):
        raise ValidationError(
            field,
            "file_target",
            f"target {_show(value)} delivers to a file; only addresses are allowed",
        )
    if probe[:9].lower() == ":include:":
        raise ValidationError(
            field,
            "include_target",
            f"target {_show(value)} includes a file of addresses; list the addresses instead",
        )
    if "@" not in value:
        _check_whitespace_and_controls(value, field, "target")
        for ch in value:
            if ch in "%!":
                raise ValidationError(
                    field,
                    "routing_character",
                    f"target {_show(value)} contains {_show(ch)}, which requests '%'/'!' "
                    "routing; it is not allowed",
                )
        raise ValidationError(
            field,
            "unqualified_target",
            f"target {_show(value)} has no '@domain'; write the full address, e.g. "
            f"{_show(value + '@example.com')}",
        )
    return normalize_address(value, field, allow_plus=True)
