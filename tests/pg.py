"""Fresh PostgreSQL schemas for tests, at 127.0.0.1:5432 (``CHURNWATCH_TEST_PG_URL``).

When the server is unreachable a test that needs it is skipped, except under
``CI=true``, where it fails: CI must not pass on a missing service.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get(
    "CHURNWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def pg_unavailable(reason: str) -> None:
    """Skip the test, or fail it under ``CI=true``."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@contextmanager
def pg_schema() -> Iterator[str]:
    """URL of a fresh PostgreSQL schema (the search path points at it), dropped after."""
    schema = f"cw_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pg_unavailable(str(exc).splitlines()[0])
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
