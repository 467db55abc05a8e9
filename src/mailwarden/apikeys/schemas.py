from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from mailwarden.kernel.actor import Role
from mailwarden.kernel.schemas import InputSchema, PublicSchema


class ApiKeyCreate(InputSchema):
    # None: the acting admin's own key.
    admin: str | None = None
    name: str = Field(default="", max_length=100)
    # Empty: every domain the admin manages (for a superadmin: everything).
    domains: list[str] = Field(default_factory=list, max_length=1000)
    read_only: bool = False
    # ISO 8601 text arrives from every face; a moment without an offset is refused.
    expires_at: Annotated[datetime | None, Field(strict=False)] = None


class ApiKeyPublic(PublicSchema):
    id: str
    admin: str
    name: str
    # Limited to `domains`; a narrowed key whose domains are all gone sees nothing.
    narrowed: bool
    domains: list[str]
    read_only: bool
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    last_used_from: str | None
    # Neither revoked nor expired.
    active: bool


class ApiKeyCreated(ApiKeyPublic):
    """The answer to a create: the only time the token itself is ever shown."""

    key: str


class KeyInUse(PublicSchema):
    """The key a request came with, as far as it limits what the request may do."""

    id: str
    name: str
    read_only: bool
    # Limited to `domains` (a narrowed key whose domains are all gone sees nothing).
    narrowed: bool
    domains: list[str]
    expires_at: datetime | None


class Identity(PublicSchema):
    """Who acts, and with what reach: the answer to GET /api/v1/me."""

    username: str
    # The role acted with: a superadmin's narrowed key acts as a domain admin.
    role: Role
    # True for a superadmin: every domain, and `domains` stays empty.
    all_domains: bool
    # The domains the actor may act on now (names, sorted).
    domains: list[str]
    read_only: bool
    api_key: KeyInUse | None
