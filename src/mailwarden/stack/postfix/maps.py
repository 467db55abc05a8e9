# ruff: noqa: S608 - query templates for Postfix, which substitutes and quotes the key itself
# (%s, %u, %d); the only other inserted text is SQL syntax.
"""The SQL lookup tables Postfix reads, one query per map file, in each dialect.

Rules every query follows:

- Only active things count: a mailbox is active, not removed (`deleted_at IS NULL`) and in an
  active domain; an alias is active and in an active domain; an alias domain is active and so is
  the domain it points to.
- Every lookup starts from a unique index: `domains.name`, `alias_domains.name`,
  `mailboxes.address`, `aliases (address, target)`. Joined addresses are compared as
  `address = '%u' || '@' || d.name` so that the unique address index answers them.
- Postfix replaces `%s` with the whole key, `%u` with its local part and `%d` with its domain,
  each quoted for the database. A query that uses `%u` is not run at all for a key with an empty
  local part (`@domain`), and one that uses `%d` is not run for a key without a domain: the
  queries rely on that to answer exactly the key forms they are meant for.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.stack.dialect import Dialect


@dataclass(frozen=True, slots=True)
class MapFile:
    """One `mailwarden/<name>.cf` file: what it answers, and its query."""

    name: str
    purpose: str
    query: str

    @property
    def filename(self) -> str:
        return f"mailwarden/{self.name}.cf"


def _live_alias_domain(dialect: Dialect) -> str:
    return f"{dialect.is_true('x.active')} AND {dialect.is_true('t.active')}"


def _on_target_domain(dialect: Dialect, column: str) -> str:
    """`column` equals the key's local part at the alias domain's target domain `t`."""
    return f"{column} = " + dialect.concat("'%u'", "'@'", "t.name")


def virtual_mailbox_domains(dialect: Dialect) -> MapFile:
    return MapFile(
        "virtual_mailbox_domains",
        "Domains whose mail is delivered here (active, not a backup MX).",
        "SELECT d.name FROM domains d"
        f" WHERE d.name = '%s' AND {dialect.is_true('d.active')}"
        f" AND {dialect.is_false('d.backup_mx')}",
    )


def relay_domains(dialect: Dialect) -> MapFile:
    return MapFile(
        "relay_domains",
        "Domains this server is a backup MX for: accepted and relayed, never delivered here.",
        "SELECT d.name FROM domains d"
        f" WHERE d.name = '%s' AND {dialect.is_true('d.active')}"
        f" AND {dialect.is_true('d.backup_mx')}",
    )


def transport_maps(dialect: Dialect) -> MapFile:
    return MapFile(
        "transport_maps",
        "Domains with a transport of their own; the others use virtual_transport (Dovecot LMTP)"
        " or relay_transport. Postfix also asks with whole addresses first: they never match.",
        "SELECT d.transport FROM domains d"
        f" WHERE d.name = '%s' AND d.transport <> '' AND {dialect.is_true('d.active')}",
    )


def virtual_mailbox_maps(dialect: Dialect) -> MapFile:
    return MapFile(
        "virtual_mailbox_maps",
        "Mailboxes that receive mail (recipient validation at RCPT); the answer is the maildir"
        " relative to the mail root.",
        "SELECT m.maildir FROM mailboxes m JOIN domains d ON d.id = m.domain_id"
        f" WHERE m.address = '%s' AND {dialect.live_mailbox('m', 'd')}",
    )


def virtual_alias_domains(dialect: Dialect) -> MapFile:
    return MapFile(
        "virtual_alias_domains",
        "Alias domains: every address is rewritten by virtual_alias_maps or refused at RCPT.",
        "SELECT x.name FROM alias_domains x JOIN domains t ON t.id = x.target_domain_id"
        f" WHERE x.name = '%s' AND {_live_alias_domain(dialect)}",
    )


def virtual_alias_aliases(dialect: Dialect) -> MapFile:
    return MapFile(
        "virtual_alias_maps",
        "Aliases, one row per target. Catch-alls are stored as `@domain`, which is the key"
        " Postfix asks last, after `user@domain` has missed in every virtual_alias_maps table.",
        "SELECT a.target FROM aliases a JOIN domains d ON d.id = a.domain_id"
        f" WHERE a.address = '%s' AND {dialect.is_true('a.active')}"
        f" AND {dialect.is_true('d.active')}",
    )


def virtual_alias_mailboxes(dialect: Dialect) -> MapFile:
    return MapFile(
        "virtual_alias_mailboxes",
        "Every mailbox maps to itself, so a real mailbox wins over its domain's catch-all"
        " (Postfix tries `user@domain` in every table before it tries `@domain`).",
        "SELECT m.address FROM mailboxes m JOIN domains d ON d.id = m.domain_id"
        f" WHERE m.address = '%s' AND {dialect.live_mailbox('m', 'd')}",
    )


def virtual_alias_domain_addresses(dialect: Dialect) -> MapFile:
    # The answer is the address in the target domain; Postfix expands it again, so it reaches
    # the same mailbox or alias targets, with the same precedence, as mail sent there directly.
    return MapFile(
        "virtual_alias_domain_maps",
        "user@aliasdomain becomes user@targetdomain, but only when that mailbox or alias"
        " exists: unknown users of an alias domain are refused at RCPT, not bounced later."
        " Not asked for `@aliasdomain` (empty local part): see the catch-all table.",
        "SELECT m.address FROM alias_domains x JOIN domains t ON t.id = x.target_domain_id"
        f" JOIN mailboxes m ON {_on_target_domain(dialect, 'm.address')}"
        # The mailbox's domain is `t`, whose state _live_alias_domain checks.
        f" WHERE x.name = '%d' AND {_live_alias_domain(dialect)}"
        f" AND {dialect.live_mailbox_row('m')}"
        " UNION "
        "SELECT a.address FROM alias_domains x JOIN domains t ON t.id = x.target_domain_id"
        f" JOIN aliases a ON {_on_target_domain(dialect, 'a.address')}"
        f" WHERE x.name = '%d' AND {_live_alias_domain(dialect)} AND {dialect.is_true('a.active')}",
    )


def virtual_alias_domain_catchall(dialect: Dialect) -> MapFile:
    return MapFile(
        "virtual_alias_domain_catchall_maps",
        "@aliasdomain answers with the targets of the target domain's catch-all. The key must be"
        " exactly `@domain`, so that this table never accepts user@aliasdomain by itself.",
        "SELECT a.target FROM alias_domains x JOIN domains t ON t.id = x.target_domain_id"
        " JOIN aliases a ON a.address = "
        + dialect.concat("'@'", "t.name")
        + f" WHERE x.name = '%d' AND '%s' = '@%d' AND {_live_alias_domain(dialect)}"
        f" AND {dialect.is_true('a.active')}",
    )


def smtpd_sender_login_maps(dialect: Dialect) -> MapFile:
    # `%u@%d` instead of `%s`: the query is not run for `@domain`, so a catch-all never lets
    # its target send as every unassigned address of the domain.
    mailbox = dialect.live_mailbox("m", "md")
    return MapFile(
        "smtpd_sender_login_maps",
        "Sender address -> the SASL logins (mailbox addresses) allowed to use it: the mailbox"
        " itself, the mailboxes among an alias's targets, and the same for alias-domain forms."
        " Catch-alls grant nothing.",
        "SELECT m.address FROM mailboxes m JOIN domains md ON md.id = m.domain_id"
        f" WHERE m.address = '%u@%d' AND {mailbox}"
        " UNION "
        "SELECT m.address FROM aliases a JOIN domains d ON d.id = a.domain_id"
        " JOIN mailboxes m ON m.address = a.target JOIN domains md ON md.id = m.domain_id"
        f" WHERE a.address = '%u@%d' AND {dialect.is_true('a.active')}"
        f" AND {dialect.is_true('d.active')} AND {mailbox}"
        " UNION "
        "SELECT m.address FROM alias_domains x JOIN domains t ON t.id = x.target_domain_id"
        f" JOIN mailboxes m ON {_on_target_domain(dialect, 'm.address')}"
        " JOIN domains md ON md.id = m.domain_id"
        f" WHERE x.name = '%d' AND {_live_alias_domain(dialect)} AND {mailbox}"
        " UNION "
        "SELECT m.address FROM alias_domains x JOIN domains t ON t.id = x.target_domain_id"
        f" JOIN aliases a ON {_on_target_domain(dialect, 'a.address')}"
        " JOIN mailboxes m ON m.address = a.target JOIN domains md ON md.id = m.domain_id"
        f" WHERE x.name = '%d' AND {_live_alias_domain(dialect)}"
        f" AND {dialect.is_true('a.active')} AND {mailbox}",
    )


def virtual_alias_tables(dialect: Dialect) -> list[MapFile]:
    """virtual_alias_maps in the order that gives the precedence described above."""
    return [
        virtual_alias_aliases(dialect),
        virtual_alias_mailboxes(dialect),
        virtual_alias_domain_addresses(dialect),
        virtual_alias_domain_catchall(dialect),
    ]
