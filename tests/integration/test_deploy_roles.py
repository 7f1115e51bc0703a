"""deploy/'s database roles on the real PostgreSQL: the workers write events, never models."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from churnwatch import store

pytestmark = pytest.mark.postgres
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _sql_of(script: str) -> str:
    """The SQL a deploy init script feeds psql (its here-document)."""
    text = (DEPLOY / script).read_text()
    return re.search(r"<<'SQL'\n(.*?)\nSQL\n", text, re.S).group(1)  # type: ignore[union-attr]


def _statements(sql: str, names: dict[str, str]) -> list[str]:
    """``sql`` with the stack's role, schema and database names replaced, one statement each."""
    for name, replacement in names.items():
        sql = re.sub(rf"\b{name}\b", replacement, sql)
    sql = re.sub(r"--.*", "", sql)
    return [s.strip() for s in sql.split(";") if s.strip()]


def test_the_worker_role_writes_what_workers_write_and_not_the_registry(pg_url: str) -> None:
    url = sa.make_url(pg_url)
    schema = url.query["options"].removeprefix("-csearch_path=")
    tag = uuid.uuid4().hex[:8]
    worker, grafana = f"cw_worker_{tag}", f"cw_grafana_{tag}"
    owner_engine = sa.create_engine(pg_url)
    with owner_engine.connect() as conn:
        owner = conn.execute(sa.text("SELECT current_user")).scalar()
        database = conn.execute(sa.text("SELECT current_database()")).scalar()
    names = {
        "churnwatch_worker": worker,
        "grafana": grafana,
        "churnwatch": str(owner),
        "public": f'"{schema}"',
        ":'pw'": "'unused'",
    }
    setup = _sql_of("postgres/initdb/20-worker-role.sh").replace(":'pw'", "'unused'")
    setup = setup.replace("DATABASE churnwatch", f'DATABASE "{database}"')
    try:
        with owner_engine.begin() as conn:
            conn.execute(sa.text(f"CREATE ROLE {grafana} LOGIN"))
            for statement in _statements(setup, names):
                conn.execute(sa.text(statement))
        store.upgrade(owner_engine)  # the migrate job, as the owner
        with owner_engine.begin() as conn:
            grants = (DEPLOY / "postgres/grants.sql").read_text()
            for statement in _statements(grants, names):
                conn.execute(sa.text(statement))

        as_worker = store.make_engine(url.set(username=worker).render_as_string(False))
        with as_worker.begin() as conn:
            conn.execute(
                sa.insert(store.customer_changes).values(
                    change_id="x1",
                    customer_id="c1",
                    ts=store.utcnow(),
                    field="value_tier",
                    from_value=None,
                    to_value="high",
                    cause="e1",
                    created_at=store.utcnow(),
                )
            )
            assert conn.execute(sa.select(sa.func.count()).select_from(store.models)).scalar() == 0
        with pytest.raises(sa.exc.ProgrammingError) as refused, as_worker.begin() as conn:
            conn.execute(sa.delete(store.models))
        assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege)
        as_worker.dispose()
    finally:
        with owner_engine.begin() as conn:
            for role in (worker, grafana):
                conn.execute(sa.text(f"DROP OWNED BY {role}"))
                conn.execute(sa.text(f"DROP ROLE {role}"))
        owner_engine.dispose()
