from __future__ import annotations

from datetime import datetime

from mailwarden.kernel.schemas import InputSchema, PublicSchema


class AppPasswordCreate(InputSchema):
    # What the password is for ("phone", "laptop Thunderbird"): unique per mailbox.
    name: str


class AppPasswordPublic(PublicSchema):
    # The public id: the first characters of the password, safe to show and to log.
    id: str
    address: str
    name: str
    created_at: datetime


class AppPasswordCreated(AppPasswordPublic):
    """The answer to a create: the only time the password itself is ever shown."""

    password: str
