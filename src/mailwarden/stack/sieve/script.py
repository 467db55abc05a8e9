"""The one Sieve script of a mailbox, rendered from its vacation and forwarding settings.

Where it runs: mailwarden uploads it over ManageSieve as the script `mailwarden` in the
mailbox's own storage (`~/sieve`, so the file is `~/sieve/mailwarden.sieve`) and never activates
it. The generated Dovecot configuration names that file in `sieve_before`, so Pigeonhole runs it
at every delivery ahead of the user's personal script, the one the user activated in their own
ManageSieve client (spam filing, say), which therefore keeps working. A missing file is skipped.

How the two scripts combine (Pigeonhole runs a sequence while the message is still kept):
- vacation only, or forwarding with a kept copy: the implicit keep stands, so the personal
  script runs next and files the message as the user's rules say;
- forwarding without a copy: the redirects cancel the implicit keep and the script ends in
  `stop`, so the personal script does not run and nothing is filed into the mailbox.

Escaping, chosen once for every value: each one is written as a Sieve *quoted string*
(RFC 5228, 2.4.2). Inside a quoted string only two characters mean anything: `\\` starts an
escape and `"` ends the string; every other character, `;`, `{`, `#`, a line break or a line
holding a lone `.`, is plain text. So writing `\\` as `\\\\` and `"` as `\\"` is enough for no value
to end its string early, which is the only way text could turn into Sieve commands. (A `text:`
multi-line string would also need dot-stuffing and cannot hold the subject; one rule is easier to
prove.) Line breaks inside the body are written as CRLF, the only line break RFC 5228 allows in
a quoted string; a subject or an address may not contain one at all. NUL, which no Sieve string
can hold, and lone surrogates, which are not UTF-8, are refused.

`${...}` stays literal text because the script never requires "variables" (nor
"encoded-character", which would decode `${hex:...}`). The services validate every value before
it is stored; the checks here are a second line of defence, raising ValueError on anything that
slipped past them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# The name of the script mailwarden owns in each mailbox's ManageSieve storage.
SCRIPT_NAME = "mailwarden"
# Pigeonhole locations for the generated Dovecot configuration. The storage keeps the script
# NAME as `<dir>/NAME.sieve`; `~` is the mailbox's home, which Pigeonhole expands itself.
SIEVE_STORAGE_DIR = "~/sieve"
SIEVE_STORAGE = f"file:{SIEVE_STORAGE_DIR};active=~/.dovecot.sieve"
SIEVE_BEFORE = f"{SIEVE_STORAGE_DIR}/{SCRIPT_NAME}.sieve"
MIN_DAYS = 1
MAX_DAYS = 365
# Pigeonhole's default `sieve_max_redirects`. A script with more redirects compiles, but fails
# when it runs ("number of redirect actions exceeds policy limit") and falls back to keeping
# the message: nothing is forwarded at all. Raise both together, never this one alone.
SIEVE_MAX_REDIRECTS = 4

_HEADER = "# Written by mailwarden from its database; edits here are overwritten."
_INDENT = "    "


@dataclass(frozen=True, slots=True)
class AutoReply:
    """A vacation reply: at most one per sender every `days` days, between two dates."""

    subject: str
    body: str
    days: int
    # Inclusive calendar dates in the server's local time; None leaves that end open.
    starts_on: date | None = None
    ends_on: date | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    """Forward every message to `targets`; keep a copy in the mailbox as well, or not."""

    targets: tuple[str, ...]
    keep_copy: bool


def quote(value: str, *, multiline: bool = False) -> str:
    """`value` as a Sieve quoted string; with `multiline`, line breaks become CRLF."""
    if "\x00" in value:
        raise ValueError("a Sieve string cannot hold NUL")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("a Sieve string must be UTF-8; lone surrogates are not")
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    elif "\r" in value or "\n" in value:
        raise ValueError("a line break is not allowed in this value")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _date_test(auto_reply: AutoReply) -> str | None:
    """The `currentdate` condition (extensions "date" and "relational"), or None: always."""
    tests = []
    if auto_reply.starts_on is not None:
        tests.append(f'currentdate :value "ge" "date" "{auto_reply.starts_on.isoformat()}"')
    if auto_reply.ends_on is not None:
        tests.append(f'currentdate :value "le" "date" "{auto_reply.ends_on.isoformat()}"')
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return "allof (" + ", ".join(tests) + ")"


def _vacation_lines(auto_reply: AutoReply) -> list[str]:
    if not MIN_DAYS <= auto_reply.days <= MAX_DAYS:
        raise ValueError(f"days must be {MIN_DAYS}..{MAX_DAYS}")
    if (
        auto_reply.starts_on is not None
        and auto_reply.ends_on is not None
        and auto_reply.ends_on < auto_reply.starts_on
    ):
        raise ValueError("the end date lies before the start date")
    command = (
        f"vacation :days {auto_reply.days} :subject {quote(auto_reply.subject)} "
        f"{quote(auto_reply.body, multiline=True)};"
    )
    condition = _date_test(auto_reply)
    if condition is None:
        return [command]
    return [f"if {condition} {{", _INDENT + command, "}"]


def _redirect_lines(redirect: Redirect) -> list[str]:
    if not redirect.targets:
        raise ValueError("a redirect needs at least one target")
    # :copy keeps the implicit keep; a plain redirect cancels it, so no copy stays here.
    command = "redirect :copy" if redirect.keep_copy else "redirect"
    return [f"{command} {quote(target)};" for target in redirect.targets]


def required_extensions(auto_reply: AutoReply | None, redirect: Redirect | None) -> list[str]:
    """Exactly the extensions the rendered script uses, sorted."""
    needed = set()
    if auto_reply is not None:
        needed.add("vacation")
        if auto_reply.starts_on is not None or auto_reply.ends_on is not None:
            needed |= {"date", "relational"}
    if redirect is not None and redirect.keep_copy:
        needed.add("copy")
    return sorted(needed)


def render_script(auto_reply: AutoReply | None, redirect: Redirect | None) -> str | None:
    """The mailbox's script (CRLF line ends), or None when there is nothing to do."""
    if auto_reply is None and redirect is None:
        return None
    lines = [_HEADER]
    extensions = required_extensions(auto_reply, redirect)
    if extensions:
        lines.append("require [" + ", ".join(quote(name) for name in extensions) + "];")
    if auto_reply is not None:
        lines.extend(_vacation_lines(auto_reply))
    if redirect is not None:
        lines.extend(_redirect_lines(redirect))
        if not redirect.keep_copy:
            # Forwarded and not kept: the user's own script, which runs after this one, must
            # not file the message into the mailbox either.
            lines.append("stop;")
    return "\r\n".join(lines) + "\r\n"
