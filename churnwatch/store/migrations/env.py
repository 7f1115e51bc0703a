"""Alembic environment: migrations run on the connection churnwatch hands in.

``churnwatch.store.upgrade`` passes an open connection in
``config.attributes["connection"]``; without one (plain ``alembic`` use) the
store URL comes from ``CHURNWATCH_DB_URL``.
"""

from alembic import context

from churnwatch.settings import Settings
from churnwatch.store import make_engine, metadata

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    with make_engine(Settings.from_env().db_url).begin() as conn:
        _run(conn)
