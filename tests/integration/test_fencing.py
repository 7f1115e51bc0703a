"""Fencing: a worker that lost its partitions can never overwrite their new owner's state.

Two :class:`Pipeline` instances on one store play the evicted owner and
the new one; the evicted one commits after the new owner has.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.engine.pipeline import Pipeline
from tests.integration.test_pipeline import processor, purchase, rec


def _spend(engine: sa.Engine, customer_id: str = "c1") -> tuple[int, float]:
    """Purchases counted and money spent, as the stored state says."""
    with engine.connect() as conn:
        rfm = store.load_states(conn)[customer_id]["rfm"]
    return rfm[1], rfm[2]


def _version(engine: sa.Engine, customer_id: str = "c1") -> int:
    with engine.connect() as conn:
        return store.load_versioned_states(conn, customer_ids=[customer_id])[customer_id][1]


def test_the_evicted_writer_commits_after_the_new_owner_and_nothing_is_lost(
    engine: sa.Engine,
) -> None:
    evicted: Pipeline = processor(engine)
    evicted.reload([0])
    evicted.process([rec(purchase("e1", 1, 10.0), 0)])
    assert _spend(engine) == (1, 10.0)

    # the partition moves; its new owner reads the store and counts a purchase
    owner = processor(engine)
    owner.reload([0])
    owner.process([rec(purchase("e2", 2, 20.0), 1)])
    assert _spend(engine) == (2, 30.0) and _version(engine) == 2

    # the evicted worker, still holding its copy from before, commits a batch
    late = evicted.process([rec(purchase("e3", 3, 40.0), 2)])
    assert late.stored == 1
    # the new owner's purchase is kept: the stale copy was refused and re-read
    assert _spend(engine) == (3, 70.0) and _version(engine) == 3

    # the broker redelivers e3 to the new owner: counted once, not twice
    again = owner.process([rec(purchase("e3", 3, 40.0), 2)])
    assert (again.stored, again.redelivered) == (0, 1)
    # and the new owner's own next batch goes over the evicted one's save
    owner.process([rec(purchase("e4", 4, 80.0), 3)])
    assert _spend(engine) == (4, 150.0) and _version(engine) == 4
    with engine.connect() as conn:
        assert store.count_events(conn) == 4


def test_a_save_over_a_version_not_read_is_refused(engine: sa.Engine) -> None:
    row = {"customer_id": "c1", "partition": 0, "state": {"n": 1}}
    with engine.begin() as conn:
        assert store.save_states(conn, [{**row, "version": None}]) == {"c1": 1}
    with engine.begin() as conn:
        assert store.save_states(conn, [{**row, "state": {"n": 2}, "version": 1}]) == {"c1": 2}
    for stale in (1, None):  # read before the last save, or never read at all
        with pytest.raises(store.StaleState), engine.begin() as conn:
            store.save_states(conn, [{**row, "state": {"n": 9}, "version": stale}])
    with engine.connect() as conn:
        assert store.load_versioned_states(conn) == {"c1": ({"n": 2}, 2)}
