"""A NUL or another control character in free text is refused by the rule, naming the field.

PostgreSQL cannot store a NUL (it answered 500 before this rule); SQLite and MariaDB stored it
silently. The rule lives in the services, so the API, the CLI and the web answer alike.
"""

from __future__ import annotations

import pytest

from tests.functional.api_helpers import Api

V1 = "/api/v1"

QUERIES = [
    (f"{V1}/mailboxes?q=a%00b", "q"),
    (f"{V1}/domains?q=a%00", "q"),
    (f"{V1}/aliases?q=%00", "q"),
    (f"{V1}/admins?q=%1b", "q"),
    (f"{V1}/alias-domains?q=x%00", "q"),
    (f"{V1}/mailboxes?cursor=user%00", "cursor"),
    (f"{V1}/alias-domains?cursor=x%00y", "cursor"),
    (f"{V1}/audit?object_key=a%00", "object_key"),
    (f"{V1}/audit?action=x%07", "action"),
]


@pytest.mark.parametrize(("path", "field"), QUERIES)
def test_control_characters_in_searches_and_cursors_are_refused(
    api: Api, path: str, field: str
) -> None:
    response = api.get(path)
    assert response.status_code == 422, response.text
    assert field in [issue["field"] for issue in response.json()["errors"]]


BODIES = [
    ("PATCH", f"{V1}/domains/a.example", {"description": "x\u0000y"}, "description"),
    ("POST", f"{V1}/domains", {"name": "c.example", "description": "a\u0085b"}, "description"),
    ("PATCH", f"{V1}/mailboxes/user1@a.example", {"name": "Bob\u0000"}, "name"),
    (
        "POST",
        f"{V1}/mailboxes",
        {"address": "new@a.example", "name": "line\nbreak", "random_password": True},
        "name",
    ),
    ("POST", f"{V1}/api-keys", {"name": "ci\u0000"}, "name"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BODIES)
def test_control_characters_in_names_and_descriptions_are_refused(
    api: Api, method: str, path: str, body: dict[str, object], field: str
) -> None:
    response = api.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert [issue["field"] for issue in response.json()["errors"]] == [field]
    listed = api.get(f"{V1}/domains/a.example").json()
    assert "\u0000" not in listed["description"]
