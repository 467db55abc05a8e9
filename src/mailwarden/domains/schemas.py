from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from mailwarden.kernel.addresses import display_domain
from mailwarden.kernel.schemas import InputSchema, PublicSchema
from mailwarden.kernel.sizes import MAX_BYTES

Count = Field(default=0, ge=0, le=2**31 - 1)
Bytes = Field(default=0, ge=0, le=MAX_BYTES)


class DomainCreate(InputSchema):
    name: str
    description: str = Field(default="", max_length=255)
    active: bool = True
    max_mailboxes: int = Count
    max_aliases: int = Count
    default_mailbox_quota_bytes: int = Bytes
    quota_bytes: int = Bytes
    backup_mx: bool = False
    transport: str = Field(default="", max_length=255)
    registration_open: bool = False
    registration_pending_limit: int = Field(default=20, ge=0, le=2**31 - 1)


class DomainUpdate(InputSchema):
    description: str | None = Field(default=None, max_length=255)
    active: bool | None = None
    max_mailboxes: int | None = Field(default=None, ge=0, le=2**31 - 1)
    max_aliases: int | None = Field(default=None, ge=0, le=2**31 - 1)
    default_mailbox_quota_bytes: int | None = Field(default=None, ge=0, le=MAX_BYTES)
    quota_bytes: int | None = Field(default=None, ge=0, le=MAX_BYTES)
    backup_mx: bool | None = None
    transport: str | None = Field(default=None, max_length=255)
    registration_open: bool | None = None
    registration_pending_limit: int | None = Field(default=None, ge=0, le=2**31 - 1)


class DomainPublic(PublicSchema):
    name: str
    description: str
    active: bool
    max_mailboxes: int
    max_aliases: int
    default_mailbox_quota_bytes: int
    quota_bytes: int
    # Relayed for another server (relay_domains), not hosted here.
    backup_mx: bool
    # Postfix transport for the domain's mail; "" means Dovecot LMTP.
    transport: str
    # Visitors may ask for a mailbox (moderated); at most this many wait at once, 0 = unlimited.
    registration_open: bool
    registration_pending_limit: int
    # Set when `domain remove --cascade` left mailboxes to purge; the domain goes with the last.
    removed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def name_unicode(self) -> str:
        return display_domain(self.name)


class DomainUsage(PublicSchema):
    """A domain with its counts: what `domain show` reports."""

    domain: DomainPublic
    mailboxes: int
    aliases: int
    alias_domains: list[str]
    allocated_quota_bytes: int

    def flat(self) -> dict[str, Any]:
        """One JSON object: the domain's fields and its counts (`domain show --json`, the API)."""
        return self.domain.model_dump(mode="json") | {
            "name_unicode": display_domain(self.domain.name),
            "mailbox_count": self.mailboxes,
            "alias_count": self.aliases,
            "alias_domains": self.alias_domains,
            "allocated_quota_bytes": self.allocated_quota_bytes,
        }
