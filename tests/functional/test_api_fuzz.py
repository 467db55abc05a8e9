"""Schema-driven fuzzing: every operation of /api/v1/openapi.json, as the superadmin.

Schemathesis generates requests from the served OpenAPI document (boundary values, valid
requests and, on purpose, invalid ones) and sends them to the real app inside the test's
rolled-back transaction, so mutations really run. Each answer must not be a 5xx and must match
what the document promises: a documented status code, its content type and its body schema.

Bounded and reproducible: per operation, schemathesis' deterministic coverage cases (about a
hundred boundary values) plus EXAMPLES_PER_OPERATION random ones from a fixed seed; no example
database, no deadline (backends differ in speed; correctness is what is checked here).
Path parameters are drawn partly from the objects of the test world, so reads, updates and
removals reach real rows instead of ending in 404 every time; and every operation with a dry
run is also called once, deterministically, as a dry run on a stored object.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from mailwarden.api.app import OPENAPI_URL, create_app
from mailwarden.apikeys import service as apikeys
from mailwarden.hosts import service as hosts_service
from mailwarden.kernel.passwords import Scheme
from mailwarden.settings import Settings
from mailwarden.stack.hosts import HostUnreachable
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.functional.api_helpers import make_key

EXAMPLES_PER_OPERATION = 20
# Fixed, so that a failure in CI fails the same way locally; MAILWARDEN_FUZZ_SEED=<n> explores
# other inputs (a failure found that way is reproduced by the same seed).
FUZZ_SEED = int(os.environ.get("MAILWARDEN_FUZZ_SEED", "20260101"))

# The objects of tests/factories/world.py by the path parameter that names them: a fuzzed read,
# update or removal then hits a stored object now and then. Other parameters get all of them.
WORLD_OBJECTS = {
    "name": ("a.example", "b.example"),
    "address": (
        "user1@a.example",
        "postmaster@a.example",
        "user1@b.example",
        "info@a.example",
        "info@b.example",
    ),
    "username": ("alice", "bob", "root"),
}
EVERY_WORLD_OBJECT = tuple(name for names in WORLD_OBJECTS.values() for name in names)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


def _no_database() -> Session:
    raise AssertionError("serving the OpenAPI document must not touch the database")


def served_document() -> dict[str, Any]:
    """The document exactly as GET /api/v1/openapi.json serves it, with every router there is."""
    app = create_app(Settings(), sessions=_no_database)
    with TestClient(app) as client:
        response = client.get(OPENAPI_URL)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


DOCUMENT = served_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,
    # The key goes in by hand: generated Authorization headers would only be refused (401)
    # and, counted as failed logins, soon throttle the test client (429) for every operation.
    with_security_parameters=False,
    database="none",
)
# Without an explicit seed schemathesis draws a fresh one per run, which wins over `derandomize`.
schema.config.seed = FUZZ_SEED


@schema.hook
def before_generate_path_parameters(
    context: schemathesis.HookContext, strategy: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    operation = context.operation
    assert operation is not None
    names = [parameter.name for parameter in operation.path_parameters]
    if not names:
        return strategy
    known = st.fixed_dictionaries(
        {name: st.sampled_from(WORLD_OBJECTS.get(name, EVERY_WORLD_OBJECT)) for name in names}
    )
    return st.one_of(strategy, known)


class FuzzTarget:
    """One app per backend (building one costs more than fuzzing an operation), whose sessions
    join the outer transaction of the test that is running."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings, sessions=self._session)
        self.connection: Connection | None = None
        self.headers: dict[str, str] = {}

    def _session(self) -> Session:
        assert self.connection is not None, "the app is only called from a running test"
        return Session(
            bind=self.connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )


@pytest.fixture(scope="session")
def fuzz_target(backend: str, tmp_path_factory: pytest.TempPathFactory) -> FuzzTarget:
    # Cheap hashing, as the `settings` fixture: password schemes are not under test here.
    data_dir = tmp_path_factory.mktemp(f"fuzz-{backend}")
    return FuzzTarget(Settings(data_dir=data_dir, password_scheme=Scheme.SHA256_CRYPT))


def _no_ssh_server_out_there(address: str, port: int, *, name: str) -> str:
    raise HostUnreachable(name, f"fuzzing stays on this machine: not connecting to {address}")


@pytest.fixture
def as_superadmin(
    fuzz_target: FuzzTarget,
    world: World,
    make_uow: UowFactory,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FuzzTarget]:
    """The app inside this test's transaction, with the world and a key of its superadmin.

    A fuzzed SSH host names any address; adding one would fetch that server's key. Traffic
    leaves loopback never: the fetch is refused as an unreachable server (a 422, as for one).
    """
    monkeypatch.setattr(hosts_service, "fetch_host_key", _no_ssh_server_out_there)
    fuzz_target.connection = connection
    fuzz_target.headers = {"Authorization": f"Bearer {make_key(make_uow, 'root')}"}
    yield fuzz_target
    fuzz_target.connection = None


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    # One world and one transaction per operation; the examples share it on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_operation_answers_within_its_documented_contract(
    case: Any, as_superadmin: FuzzTarget
) -> None:
    case.call_and_validate(app=as_superadmin.app, headers=as_superadmin.headers, checks=CHECKS)


def dry_run_operations() -> list[tuple[str, str]]:
    """Every (method, path) of the document that takes `dry_run`."""
    return [
        (method.upper(), path)
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if any(parameter["name"] == "dry_run" for parameter in operation.get("parameters", []))
    ]


def stored_object(path: str, parameter: str, key_id: str) -> str:
    """A stored object the path parameter can name (for `key_id`: the caller's own key)."""
    if parameter == "key_id":
        return key_id
    if parameter == "address" and path.startswith("/api/v1/aliases/"):
        return "info@a.example"
    return WORLD_OBJECTS.get(parameter, EVERY_WORLD_OBJECT)[0]


@pytest.mark.parametrize(("method", "path"), dry_run_operations())
def test_a_dry_run_on_a_stored_object_answers_as_documented(
    method: str, path: str, as_superadmin: FuzzTarget
) -> None:
    # Random inputs rarely combine dry_run=true, an existing object and a valid body; this
    # makes the combination on every operation that has a dry run, with the smallest body.
    operation = schema[path][method]
    parsed = apikeys.parse_token(as_superadmin.headers["Authorization"].removeprefix("Bearer "))
    assert parsed is not None
    key_id = parsed[0]
    case = operation.Case(
        path_parameters={
            parameter.name: stored_object(path, parameter.name, key_id)
            for parameter in operation.path_parameters
        },
        query={"dry_run": "true"},
        body={} if operation.body else schemathesis.core.NOT_SET,
    )
    case.call_and_validate(app=as_superadmin.app, headers=as_superadmin.headers, checks=CHECKS)


def test_the_fuzzed_document_has_the_resource_operations() -> None:
    # Guards against fuzzing a near-empty document (routers missing from the app).
    operations = {
        f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item
    }
    assert {"GET /api/v1/domains", "PATCH /api/v1/domains/{name}", "GET /healthz"} <= operations
