"""Every refusal is exit 1 and ONE line on stderr in the documented format, naming field and rule.

mailwarden: <field>: <message> [<rule>]
mailwarden: <kind> not found: <key>
mailwarden: not permitted: <permission>
"""

from __future__ import annotations

import re

from tests.functional.cli_helpers import Cli

DOCUMENTED = re.compile(
    r"mailwarden: (?:"
    r"[\w.\[\]-]+: .+ \[[a-z_]+\]"  # field: message [rule]
    r"|[a-z -]+ not found: \S+"  # kind not found: key
    r"|not permitted: \S.*"  # not permitted: ...
    r")"
)


def _offenders(lines: list[str]) -> list[str]:
    return [line for line in lines if not DOCUMENTED.fullmatch(line)]


def test_refusals_of_input_follow_the_documented_format(cli: Cli) -> None:
    cli.add_domain("example.org", "--max-mailboxes", "1")
    cli.add_mailbox("a@example.org")
    cli.add_admin("carol", "domain-admin", "example.org")
    state = cli.state()
    lines = [
        cli.refused("domain", "add", "x.example", "--max-aliases", "-3"),
        cli.refused("mailbox", "add", "b@example.org", "--random-password"),
        cli.refused("mailbox", "passwd", "a@example.org", "--password-stdin", input="x\n"),
        cli.refused("alias", "add", "q@example.org", "q@example.org"),
        cli.refused("domain", "add", "x.example", as_admin="carol"),
    ]
    assert _offenders(lines) == []
    assert cli.state() == state


def test_a_domain_admin_is_refused_the_protected_and_superadmin_mailboxes_in_format(
    cli: Cli,
) -> None:
    """The guards raise PermissionDenied with a free-text message: no `not permitted:` prefix."""
    cli.add_domain("example.org")
    cli.add_mailbox("postmaster@example.org")
    cli.add_mailbox("boss@example.org")
    cli.add_admin("boss@example.org", "superadmin")
    cli.add_admin("carol", "domain-admin", "example.org")
    state = cli.state()
    lines = [
        cli.refused("mailbox", "remove", "postmaster@example.org", as_admin="carol"),
        cli.refused("mailbox", "edit", "boss@example.org", "--name", "x", as_admin="carol"),
        cli.refused("mailbox", "passwd", "boss@example.org", "--random-password", as_admin="carol"),
    ]
    assert cli.state() == state
    assert _offenders(lines) == []


def test_an_unknown_as_admin_is_refused_in_format(cli: Cli) -> None:
    """`--as nobody` prints `mailwarden: --as: no active admin named 'nobody'`, without a rule."""
    lines = [cli.refused("domain", "list", as_admin="nobody")]
    assert _offenders(lines) == []
