"""A record that passes validation yet fails in the store step: found by splitting the batch."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from collections.abc import Sequence

import psycopg
import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.engine.commit import Committed, Committer
from churnwatch.engine.isolation import isolate, merge
from churnwatch.events import Event, PurchaseEvent
from churnwatch.records import RawRecord
from churnwatch.store.errors import is_transient
from tests.integration.test_pipeline import processor, purchase, rec

BATCH = 1000
CUSTOMERS = 40
POISON_AT = 617


def _batch(poison: Sequence[int]) -> list[tuple[RawRecord, Event]]:
    """``BATCH`` valid purchases; those at ``poison`` pass validation yet overflow the fold."""
    pairs = []
    for i in range(BATCH):
        cid = f"c{i % CUSTOMERS}"
        obj = purchase(f"e{i}", i / 10, cid=cid)
        record = rec(obj, i, key=cid.encode())
        event = PurchaseEvent.model_validate(obj)
        if i in poison:
            # what a producer could send before amounts were bounded: 1e306 x 1000 is inf
            event = PurchaseEvent.model_construct(**{**event.__dict__, "amount": 1e306})
        pairs.append((record, event))
    return pairs


class _Counted:
    """The processor's fold, counting the store transactions it is asked for."""

    def __init__(self, committer: Committer) -> None:
        self.committer, self.calls = committer, 0

    def __call__(self, items: Sequence[tuple[RawRecord, Event]]) -> Committed:
        self.calls += 1
        return self.committer.commit(items)


def _purchase_counts(engine: sa.Engine) -> Counter[str]:
    with engine.connect() as conn:
        states = store.load_states(conn)
    return Counter({cid: row["features"]["purchase_count"] for cid, row in states.items()})


def test_one_poison_record_in_a_thousand_costs_about_two_log2_transactions(
    engine: sa.Engine,
) -> None:
    step = _Counted(processor(engine).committer)
    result = isolate(step, _batch([POISON_AT]), lambda pair: pair[0], Committed)

    # one failed try of the whole, then two halves per level down to the record
    levels = math.ceil(math.log2(BATCH))
    assert 1 + 2 * (levels - 1) <= step.calls <= 1 + 2 * levels
    assert result.stored == BATCH - 1
    assert store.count_rows(engine, store.events) == BATCH - 1
    [letter] = result.dead_letters
    assert letter.offset == POISON_AT
    assert letter.error.startswith("cannot be stored: OverflowError")
    # every other event folded exactly once
    expected = Counter(f"c{i % CUSTOMERS}" for i in range(BATCH) if i != POISON_AT)
    assert _purchase_counts(engine) == expected
    with engine.connect() as conn:
        stored = {r.event_id for r in conn.execute(sa.select(store.events.c.event_id))}
    assert stored == {f"e{i}" for i in range(BATCH)} - {f"e{POISON_AT}"}


def test_several_poison_records_and_a_redelivery(engine: sa.Engine) -> None:
    poison = [0, 333, 334, 999]
    proc = processor(engine)
    batch = _batch(poison)
    first = isolate(proc.committer.commit, batch, lambda pair: pair[0], Committed)
    assert sorted(d.offset for d in first.dead_letters) == poison
    assert first.stored == BATCH - len(poison)
    # the same batch again (a retry after a crash): nothing new, the poison again a letter
    again = isolate(proc.committer.commit, batch, lambda pair: pair[0], Committed)
    assert again.stored == 0 and again.redelivered == BATCH - len(poison)
    assert sorted(d.offset for d in again.dead_letters) == poison
    expected = Counter(f"c{i % CUSTOMERS}" for i in range(BATCH) if i not in poison)
    assert _purchase_counts(engine) == expected


def test_a_transient_failure_is_raised_for_a_retry_not_split(engine: sa.Engine) -> None:
    calls = []

    def step(items: Sequence[RawRecord]) -> Committed:
        calls.append(len(items))
        raise sa.exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("server closed"))

    records = [rec(purchase(f"e{i}", i), i) for i in range(8)]
    with pytest.raises(sa.exc.OperationalError):
        isolate(step, records, lambda r: r, Committed)
    assert calls == [8]


def test_merge_adds_up_two_results() -> None:
    a, b = Committed(stored=2, redelivered=1, scoring_s=0.5), Committed(stored=3, scored=4)
    a.states, b.states = {"c1": {"v": 1}, "c2": {"v": 1}}, {"c2": {"v": 2}}
    a.alerts, b.alerts = [{"alert_id": "x"}], [{"alert_id": "y"}]
    out = merge(a, b)
    assert (out.stored, out.redelivered, out.scored, out.scoring_s) == (5, 1, 4, 0.5)
    assert out.states == {"c1": {"v": 1}, "c2": {"v": 2}}
    assert out.alerts == [{"alert_id": "x"}, {"alert_id": "y"}]


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (sa.exc.OperationalError("q", {}, psycopg.OperationalError("connection lost")), True),
        (sa.exc.OperationalError("q", {}, psycopg.errors.SerializationFailure("race")), True),
        (sa.exc.OperationalError("q", {}, psycopg.errors.DeadlockDetected("deadlock")), True),
        (sa.exc.OperationalError("q", {}, psycopg.errors.ProgramLimitExceeded("too big")), False),
        (sa.exc.OperationalError("q", {}, sqlite3.OperationalError("database is locked")), True),
        (sa.exc.OperationalError("q", {}, sqlite3.OperationalError("no such column: x")), False),
        (sa.exc.DataError("q", {}, psycopg.DataError("NUL character")), False),
        (sa.exc.IntegrityError("q", {}, psycopg.IntegrityError("duplicate")), False),
        (OverflowError("cannot convert float infinity to integer"), False),
        (TypeError("Integer exceeds 64-bit range"), False),
        (ConnectionResetError("reset"), True),
    ],
)
def test_which_store_errors_are_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient
