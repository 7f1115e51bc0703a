"""Shared fixtures: a fresh embedded broker, and stores on SQLite and PostgreSQL.

PostgreSQL runs at 127.0.0.1:5432 (database ``test``; override with
``CHURNWATCH_TEST_PG_URL``). Each test gets a schema of its own, dropped after.
When the server is unreachable the PostgreSQL cases are skipped, except under
``CI=true``, where they fail: CI must not pass on a missing service.
Clocks read the reference time as the suite begins (``tests/reference.py``).
"""

from __future__ import annotations

import os

# One OpenMP thread for scikit-learn, here and in every process a test starts:
# on a shared 2-core machine its idle threads spin and slow training many times
# over (a nine-month training test: 164 s with the default threads, 12 s with one).
os.environ.setdefault("OMP_NUM_THREADS", "1")
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.sim.broker import EmbeddedBroker
from churnwatch.times import offset_to, set_clock_offset
from tests.fault_proxy import CuttableProxy
from tests.pg import pg_schema
from tests.reference import REFERENCE

# Every test, and every process one starts, runs on one clock that read the
# reference time as the suite began: its verdict does not depend on the day.
CLOCK_OFFSET_S = offset_to(REFERENCE)
os.environ["CHURNWATCH_CLOCK_OFFSET_S"] = repr(CLOCK_OFFSET_S)
set_clock_offset(CLOCK_OFFSET_S)


@pytest.fixture
def kafka_broker() -> Iterator[EmbeddedBroker]:
    """A tansu broker of this test's own on a free port."""
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL schema (the search path points at it)."""
    with pg_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The same test on a SQLite file and on a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """A migrated store."""
    eng = store.make_engine(db_url)
    store.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def pg_proxy(pg_url: str) -> Iterator[tuple[CuttableProxy, str]]:
    """A cuttable proxy in front of PostgreSQL, and the URL of the test's schema through it."""
    url = sa.make_url(pg_url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.close()
