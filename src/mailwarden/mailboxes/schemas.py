from __future__ import annotations

from datetime import datetime

from pydantic import Field

from mailwarden.kernel.schemas import InputSchema, PublicSchema
from mailwarden.kernel.sizes import MAX_BYTES


class MailboxCreate(InputSchema):
    address: str
    name: str = Field(default="", max_length=255)
    # None: the domain's default mailbox quota.
    quota_bytes: int | None = Field(default=None, ge=0, le=MAX_BYTES)
    active: bool = True


class MailboxUpdate(InputSchema):
    name: str | None = Field(default=None, max_length=255)
    quota_bytes: int | None = Field(default=None, ge=0, le=MAX_BYTES)
    active: bool | None = None


class MailboxPublic(PublicSchema):
    address: str
    domain: str
    local_part: str
    name: str
    quota_bytes: int
    active: bool
    maildir: str
    password_scheme: str | None
    # True when the stored hash is weaker than, or differs from, the configured scheme.
    password_needs_upgrade: bool
    password_changed_at: datetime
    created_at: datetime
    updated_at: datetime
    # Usage as Dovecot counts it (quota_clone); None until Dovecot has reported the mailbox.
    quota_used_bytes: int | None = None
    quota_used_messages: int | None = None
    # Set while the mailbox is removed: no delivery, no login; restorable until purge_after,
    # when `maintenance purge` may delete it and its mail.
    removed_at: datetime | None = None
    purge_after: datetime | None = None
    # Why the last purge could not delete the maildir (the mailbox is kept and retried).
    purge_error: str | None = None
