"""Fixtures of the CLI tests: a `Cli` bound to a committed database on each backend."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.functional.cli_helpers import Cli


@pytest.fixture
def cli(committed_database: str, engine: Engine) -> Cli:
    return Cli(committed_database, engine)
