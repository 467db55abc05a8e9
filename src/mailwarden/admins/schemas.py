from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from mailwarden.kernel.actor import Role
from mailwarden.kernel.schemas import InputSchema, PublicSchema

# Roles arrive as text from every face; only known values pass.
RoleField = Annotated[Role, Field(strict=False)]


class AdminCreate(InputSchema):
    username: str
    role: RoleField
    domains: list[str] = Field(default_factory=list)
    active: bool = True


class AdminUpdate(InputSchema):
    role: RoleField | None = None
    add_domains: list[str] = Field(default_factory=list)
    remove_domains: list[str] = Field(default_factory=list)
    active: bool | None = None


class AdminPublic(PublicSchema):
    username: str
    role: Role
    domains: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime
