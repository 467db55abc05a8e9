"""Strict input schemas, and the bridge from Pydantic's errors to the domain error tree."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict

from mailwarden.kernel.errors import FieldIssue, ValidationError

M = TypeVar("M", bound=BaseModel)


class InputSchema(BaseModel):
    """Input: unknown fields are refused, so no caller can mass-assign roles, paths or counters."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PublicSchema(BaseModel):
    """Output: what any face may show. Secrets are never fields of a public schema."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


def parse(schema: type[M], data: dict[str, Any]) -> M:
    """Build `schema` from `data`, raising the domain ValidationError (field + rule) on failure."""
    try:
        return schema.model_validate(data)
    except pydantic.ValidationError as exc:
        issues = [
            FieldIssue(
                field=".".join(str(part) for part in error["loc"]) or "body",
                rule=error["type"],
                message=error["msg"],
            )
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise ValidationError.many(issues) from None
