"""Fixtures of the face tests: a `Cli` bound to a committed database, and an `Api` client on
the real app inside the test's rolled-back transaction, on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine

from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.functional.api_helpers import PERSONA_KEYS, Api, api_on, make_key
from tests.functional.cli_helpers import Cli
from tests.functional.web_helpers import Web, web_on


@pytest.fixture
def cli(committed_database: str, engine: Engine) -> Cli:
    return Cli(committed_database, engine)


@pytest.fixture
def api(
    world: World, make_uow: UowFactory, connection: Connection, settings: Settings
) -> Iterator[Api]:
    """The world's personas, each with an API key (see api_helpers.PERSONA_KEYS)."""
    keys = {
        persona: make_key(make_uow, admin, domains, read_only)
        for persona, (admin, domains, read_only) in PERSONA_KEYS.items()
    }
    with api_on(connection, settings, keys) as client:
        yield client


@pytest.fixture
def web(
    world: World, make_uow: UowFactory, connection: Connection, settings: Settings
) -> Iterator[Web]:
    """The console and portal as the world's personas (see web_helpers.WEB_PERSONAS)."""
    with web_on(connection, settings, make_uow) as client:
        yield client
