from __future__ import annotations

from datetime import datetime

from mailwarden.kernel.schemas import InputSchema, PublicSchema


class AliasDomainCreate(InputSchema):
    alias_domain: str
    target_domain: str
    active: bool = True


class AliasDomainPublic(PublicSchema):
    alias_domain: str
    target_domain: str
    active: bool
    created_at: datetime
