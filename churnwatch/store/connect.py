"""Engines and migrations: how a process reaches the store and brings its schema up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, **options: Any) -> Engine:
    """Create an engine; for a SQLite file, create its folder and enable WAL.

    ``options`` go to :func:`sqlalchemy.create_engine` (pool sizes, say).
    """
    url_obj = sa.make_url(url)
    if url_obj.get_backend_name() == "sqlite":
        if url_obj.database and url_obj.database != ":memory:":
            Path(url_obj.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url_obj, json_serializer=_json_dumps, json_deserializer=orjson.loads, **options
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        return engine
    return sa.create_engine(
        url_obj,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_pre_ping=True,
        **options,
    )


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def count_rows(engine: Engine, table: sa.Table) -> int:
    """Number of rows in a store table."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def schema_revision(conn: Connection) -> str | None:
    """The Alembic revision the store's schema is at (``None`` before any migration ran)."""
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def login_rights(url: str, writes: str) -> tuple[bool, str | None] | None:
    """What a PostgreSQL login may do: ``(superuser, tables it has any of `writes` on)``.

    ``writes`` names privileges as ``has_table_privilege`` takes them
    (``"INSERT,UPDATE"``); the tables come as one comma-separated text, ``None``
    for none. ``None`` when the server cannot be reached from here (3 s at most).
    """
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            superuser = conn.execute(
                sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            ).scalar()
            writable = conn.execute(
                sa.text(
                    "SELECT string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'r' AND n.nspname = current_schema() "
                    "AND has_table_privilege(current_user, c.oid, :writes)"
                ),
                {"writes": writes},
            ).scalar()
    except sa.exc.OperationalError:
        return None
    finally:
        engine.dispose()
    return bool(superuser), writable


@dataclass(frozen=True)
class StoreUrl:
    """The parts of a database URL, for code that must not parse it with SQLAlchemy itself."""

    #: ``postgresql``, ``sqlite``, …
    backend: str
    username: str | None
    password: str | None
    host: str | None
    port: int | None
    database: str | None
    #: the URL's query parameters (``sslmode``, say)
    query: Mapping[str, Any]


def parse_url(url: str) -> StoreUrl:
    """The parts of a SQLAlchemy database URL (its errors as :func:`sqlalchemy.make_url`'s)."""
    parsed = sa.make_url(url)
    return StoreUrl(
        backend=parsed.get_backend_name(),
        username=parsed.username,
        password=parsed.password,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
