from __future__ import annotations

from pydantic import Field

from mailwarden.kernel.schemas import InputSchema, PublicSchema


class AliasCreate(InputSchema):
    # `@domain` makes a catch-all.
    address: str
    targets: list[str] = Field(min_length=1)
    active: bool = True


class AliasUpdate(InputSchema):
    # Replace all targets, or add / remove some; `set_targets` excludes the other two.
    set_targets: list[str] | None = None
    add_targets: list[str] = Field(default_factory=list)
    remove_targets: list[str] = Field(default_factory=list)
    active: bool | None = None


class AliasPublic(PublicSchema):
    address: str
    domain: str
    catch_all: bool
    targets: list[str]
    active: bool
