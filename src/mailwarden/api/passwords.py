"""How a request gives a password: `password`, or `random_password: true` to have one made.

A generated password is in the answer once, under `password`, as the CLI's `--random-password
--json` shows it; a password the client sent never comes back.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mailwarden.kernel.errors import ValidationError
from mailwarden.kernel.passwords import generate_password

# repr=False: a password must not reach a log line through a model's repr.
PASSWORD_FIELD: Any = Field(
    default=None,
    repr=False,
    description="The password. Give this or `random_password: true`, not both; never returned.",
    json_schema_extra={"writeOnly": True},
)
RANDOM_FIELD: Any = Field(
    default=False, description="Generate the password; the answer shows it, this once only."
)


def chosen_password(password: str | None, random_password: bool) -> tuple[str, bool]:
    """The password to set, and whether it was generated (so the answer must show it)."""
    if random_password and password is not None:
        raise ValidationError(
            "random_password", "exclusive", "give a password or random_password: true, not both"
        )
    if random_password:
        return generate_password(), True
    if password is None:
        raise ValidationError("password", "required", "give a password, or random_password: true")
    return password, False


def shown_once(values: dict[str, Any], password: str, generated: bool) -> dict[str, Any]:
    return values | {"password": password} if generated else values
