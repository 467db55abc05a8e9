"""Who acts: an administrator, the local operator or a mailbox user (the self-service portal)
on one channel, with request metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    SUPERADMIN = "superadmin"
    DOMAIN_ADMIN = "domain-admin"
    # The owner of one mailbox, logged in to the portal: acts on that mailbox alone.
    MAILBOX_USER = "mailbox-user"


class Channel(StrEnum):
    CLI = "cli"
    API = "api"
    WEB = "web"
    SYSTEM = "system"


# The CLI without --as acts as this operator: whoever can reach the database owns it.
LOCAL_OPERATOR = "local-operator"


@dataclass(frozen=True, slots=True)
class Actor:
    username: str
    role: Role
    # Ids of the domains a domain admin manages; ignored for superadmins.
    domain_ids: frozenset[int] = field(default_factory=frozenset)
    channel: Channel = Channel.CLI
    admin_id: int | None = None
    client_address: str | None = None
    read_only: bool = False
    # The public id of the API key the request came with (audited with every change it makes).
    api_key: str | None = None
    # Set for a mailbox user: the one mailbox it may act on.
    mailbox_id: int | None = None

    @property
    def is_superadmin(self) -> bool:
        return self.role is Role.SUPERADMIN

    @property
    def is_mailbox_user(self) -> bool:
        return self.role is Role.MAILBOX_USER

    def manages(self, domain_id: int) -> bool:
        return self.is_superadmin or (
            self.role is Role.DOMAIN_ADMIN and domain_id in self.domain_ids
        )

    @classmethod
    def local_operator(cls, channel: Channel = Channel.CLI) -> Actor:
        return cls(username=LOCAL_OPERATOR, role=Role.SUPERADMIN, channel=channel)
