"""The SQLAlchemy metadata in churnwatch.store is the schema: the migrations build exactly it."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from churnwatch import store


def _drift(engine: sa.Engine, metadata: sa.MetaData = store.metadata) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_the_migrations_build_exactly_the_metadata(engine: sa.Engine) -> None:
    # the fixture's store is upgraded to the newest revision
    assert _drift(engine) == []


def test_a_column_the_migrations_lack_is_reported_as_drift(engine: sa.Engine) -> None:
    changed = sa.MetaData()
    for table in store.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["alerts"].append_column(sa.Column("nickname", sa.Text))
    diffs = _drift(engine, changed)
    assert [(d[0], d[3].name) for d in diffs] == [("add_column", "nickname")]
