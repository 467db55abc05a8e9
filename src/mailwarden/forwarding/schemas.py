from __future__ import annotations

from datetime import datetime

from mailwarden.kernel.schemas import InputSchema, PublicSchema


class ForwardSet(InputSchema):
    """The whole forwarding of a mailbox; setting it replaces the previous targets."""

    targets: list[str]
    # None: keep the stored choice, or keep a copy when there is none yet.
    keep_copy: bool | None = None


class ForwardPublic(PublicSchema):
    address: str
    enabled: bool
    # Empty while the mailbox never had forwarding.
    targets: list[str]
    keep_copy: bool
    updated_at: datetime | None
