"""Insert helpers the writing modules share: the dialect's upsert, insert-once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from churnwatch.times import utcnow


def dialect_insert(conn: Connection, table: sa.Table) -> Any:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")


def add_once(
    conn: Connection, table: sa.Table, key: str, rows: Sequence[Mapping[str, Any]]
) -> set[str]:
    """Insert rows stamped ``created_at``, skipping keys already present; return new keys."""
    if not rows:
        return set()
    now = utcnow()
    stmt = dialect_insert(conn, table).on_conflict_do_nothing(index_elements=[key])
    result = conn.execute(
        stmt.returning(table.c[key]), [{**row, "created_at": now} for row in rows]
    )
    return {row[0] for row in result}
