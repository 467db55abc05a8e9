"""The schema comes from the migrations, matches the models, and indexes every daemon lookup."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from mailwarden.db.engine import build_engine
from mailwarden.db.migrate import (
    current_revision,
    downgrade,
    head_revision,
    include_object,
    upgrade,
)
from mailwarden.db.models import Base

# Every equality lookup Postfix and Dovecot make, and the tenant-scoped listings: (table, column).
LOOKUPS = [
    ("domains", "name"),  # virtual_mailbox_domains
    ("alias_domains", "name"),  # alias domain rewriting
    ("mailboxes", "address"),  # virtual_mailbox_maps, passdb, userdb, sender login maps
    ("aliases", "address"),  # virtual_alias_maps (incl. @domain catch-all)
    ("aliases", "target"),  # "who forwards to me"
    ("mailboxes", "domain_id"),
    ("aliases", "domain_id"),
    ("alias_domains", "target_domain_id"),
    ("admins", "username"),
    ("admin_domains", "domain_id"),
    ("audit_log", "domain"),
    ("audit_log", "created_at"),
]


def test_the_migrated_schema_matches_the_models(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "include_object": include_object}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    assert current_revision(engine) == head_revision()


@pytest.mark.parametrize(("table", "column"), LOOKUPS)
def test_every_lookup_column_leads_an_index(engine, table, column):
    inspector = inspect(engine)
    leading = {index["column_names"][0] for index in inspector.get_indexes(table)}
    leading |= {u["column_names"][0] for u in inspector.get_unique_constraints(table)}
    leading.add(inspector.get_pk_constraint(table)["constrained_columns"][0])
    assert column in leading


def test_migrations_go_down_and_up_again(database_url, backend, tmp_path):
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}" if backend == "sqlite" else database_url
    engine = build_engine(url)
    try:
        upgrade(engine)
        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
