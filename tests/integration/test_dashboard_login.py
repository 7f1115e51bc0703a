"""``dashboard push`` gives Grafana a read-only login: the store's own or a writer is refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.dashboards.push import refuse_writers

pytestmark = pytest.mark.postgres


@pytest.fixture
def roles(pg_url: str) -> Iterator[tuple[str, str, str]]:
    """A migrated store, and URLs of a reading role and of a role that may insert alerts."""
    engine = store.make_engine(pg_url)
    store.upgrade(engine)
    url = sa.make_url(pg_url)
    schema = url.query["options"].removeprefix("-csearch_path=")
    tag = uuid.uuid4().hex[:8]
    reader, writer = f"cw_reader_{tag}", f"cw_writer_{tag}"
    with engine.begin() as conn:
        for role in (reader, writer):
            conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
            conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
            conn.execute(sa.text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {role}'))
        conn.execute(sa.text(f'GRANT INSERT ON "{schema}".alerts TO {writer}'))
    try:
        yield (
            pg_url,
            url.set(username=reader).render_as_string(hide_password=False),
            url.set(username=writer).render_as_string(hide_password=False),
        )
    finally:
        with engine.begin() as conn:
            for role in (reader, writer):
                conn.execute(sa.text(f"DROP OWNED BY {role}"))
                conn.execute(sa.text(f"DROP ROLE {role}"))
        engine.dispose()


def test_a_reading_role_passes_and_writers_are_refused(roles: tuple[str, str, str]) -> None:
    owner, reader, writer = roles
    assert refuse_writers(reader, owner) == (
        f"the login {sa.make_url(reader).username!r} can only read the store"
    )
    with pytest.raises(ValueError, match=r"can write the store \(alerts\)"):
        refuse_writers(writer, owner)
    with pytest.raises(ValueError, match="the store's own login"):
        refuse_writers(owner, owner)
    with pytest.raises(ValueError, match="is a superuser"):
        refuse_writers(owner, None)


def test_an_unreachable_store_is_checked_by_the_login_name_only() -> None:
    owner = "postgresql+psycopg://churnwatch:pw@127.0.0.1:1/churnwatch"
    note = refuse_writers("postgresql+psycopg://grafana:pw@127.0.0.1:1/churnwatch", owner)
    assert note == "could not reach the store from here: checked the login 'grafana' by name"
    with pytest.raises(ValueError, match="the store's own login"):
        refuse_writers(owner.replace(":1/", ":2/"), owner)
