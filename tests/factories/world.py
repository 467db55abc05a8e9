"""A small world of domains, mailboxes, aliases and the test personas, built through the services.

Personas: `superadmin`; `domain_admin` manages a.example; `outsider` manages b.example only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminCreate
from mailwarden.aliases import service as aliases
from mailwarden.aliases.schemas import AliasCreate
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainCreate
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.schemas import MailboxCreate

GIB = 1024**3
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class World:
    superadmin: Actor
    domain_admin: Actor
    outsider: Actor


def build_world(make_uow: Callable[..., UnitOfWork]) -> World:
    operator = Actor.local_operator(Channel.SYSTEM)
    with make_uow() as uow:
        domains.create(
            uow,
            operator,
            parse(
                DomainCreate,
                {
                    "name": "a.example",
                    "max_mailboxes": 5,
                    "max_aliases": 5,
                    "quota_bytes": 10 * GIB,
                    "default_mailbox_quota_bytes": 1 * GIB,
                },
            ),
        )
        domains.create(uow, operator, parse(DomainCreate, {"name": "b.example"}))
        for address in ("user1@a.example", "postmaster@a.example", "user1@b.example"):
            mailboxes.create(
                uow, operator, parse(MailboxCreate, {"address": address}), password=PASSWORD
            )
        aliases.create(
            uow,
            operator,
            parse(AliasCreate, {"address": "info@a.example", "targets": ["user1@a.example"]}),
        )
        aliases.create(
            uow,
            operator,
            parse(AliasCreate, {"address": "info@b.example", "targets": ["user1@b.example"]}),
        )
        for username, role, managed in (
            ("root", Role.SUPERADMIN, []),
            ("alice", Role.DOMAIN_ADMIN, ["a.example"]),
            ("bob", Role.DOMAIN_ADMIN, ["b.example"]),
        ):
            admins.create(
                uow,
                operator,
                parse(AdminCreate, {"username": username, "role": role, "domains": managed}),
                password=PASSWORD,
            )
        uow.finish()
    with make_uow() as uow:
        return World(
            superadmin=admins.actor_for(uow, "root", Channel.CLI),
            domain_admin=admins.actor_for(uow, "alice", Channel.CLI),
            outsider=admins.actor_for(uow, "bob", Channel.CLI),
        )
