from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from mailwarden.kernel.schemas import InputSchema, PublicSchema


class RegistrationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class RegistrationSubmit(InputSchema):
    """What a visitor fills in on the registration page."""

    address: str
    name: str = Field(max_length=255)
    # Hashed at once under the one password policy; becomes the mailbox's on approval.
    password: str
    # Where the visitor can be reached about the decision; "" for nowhere.
    contact: str = ""


class RegistrationReceipt(PublicSchema):
    """What the visitor learns: the request is waiting; nothing about the domain's queue."""

    address: str
    status: RegistrationStatus
    created_at: datetime


class RegistrationPublic(PublicSchema):
    """A request as its moderators see it (never the password hash)."""

    id: int
    address: str
    domain: str
    name: str
    contact: str
    status: RegistrationStatus
    client_address: str | None
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    reason: str
