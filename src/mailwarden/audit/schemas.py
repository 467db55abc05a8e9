from __future__ import annotations

from datetime import datetime
from typing import Any

from mailwarden.kernel.schemas import PublicSchema


class AuditEntryPublic(PublicSchema):
    id: int
    created_at: datetime
    actor: str
    actor_role: str
    channel: str
    client_address: str | None
    api_key: str | None = None
    action: str
    object_type: str
    object_key: str
    domain: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
