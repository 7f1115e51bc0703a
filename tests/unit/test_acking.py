"""Acknowledgements in offset order, against Faust's own commit bookkeeping.

The consumer is Faust's real one, never started: what it would commit is what
its commit computes from the acknowledgements it was given.
"""

from __future__ import annotations

import faust
import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from churnwatch import store
from churnwatch.settings import Settings
from churnwatch.streams.acking import InOrderAcks
from churnwatch.streams.app import create_app

TOPIC = "purchases"
PARTITION = TP(TOPIC, 0)


@pytest.fixture
def app() -> faust.App:
    app = faust.App("acking-test", broker="kafka://127.0.0.1:1")
    app.topics._acking_topics.add(TOPIC)  # as subscribing the agent's topic does
    return app


def consumed(app: faust.App, offsets: range, generation: int = 1) -> list[faust.Event]:
    """Events as the conductor hands them to a stream: one reference each."""
    events = []
    for offset in offsets:
        message = ConsumerMessage(
            TOPIC,
            0,
            offset,
            0.0,
            0,
            None,
            None,
            b"{}",
            None,
            tp=PARTITION,
            generation_id=generation,
        )
        message.incref()
        events.append(faust.Event(app, None, b"{}", None, message))
    return events


def taken(app: faust.App, acks: InOrderAcks, events: list[faust.Event]) -> list[faust.Event]:
    """What the intake does with a batch: ``track`` it, then the batch's own ack."""
    fresh = acks.track(events)
    for event in events:
        event.ack()
    return fresh


def commit(app: faust.App) -> int | None:
    """The offset a commit would store now (and it is then committed)."""
    offset = app.consumer._filter_committable_offsets([PARTITION]).get(PARTITION)
    if offset is not None:
        app.consumer._committed_offset[PARTITION] = offset
    return offset


def test_faust_commits_past_a_record_nobody_acknowledged(app: faust.App) -> None:
    """The hazard: a dead letter acknowledged while the record before it is held."""
    held, dead_letter = consumed(app, range(2))
    held.message.incref()  # held for event-time order
    held.ack()
    dead_letter.ack()
    assert not held.message.acked
    assert commit(app) == 2  # past the held record: a worker killed now loses it


def test_a_finished_record_waits_for_every_earlier_one(app: faust.App) -> None:
    acks = InOrderAcks()
    held, dead, later, rekeyed = taken(app, acks, consumed(app, range(4)))
    acks.done(dead)
    acks.done(rekeyed)
    assert commit(app) is None and len(acks) == 2
    acks.done(held)
    assert commit(app) == 2  # held and dead; later is still held
    acks.done(later)
    assert commit(app) == 4 and len(acks) == 0


def test_only_one_record_held_at_the_committed_offset_is_not_passed(app: faust.App) -> None:
    acks = InOrderAcks()
    first = taken(app, acks, consumed(app, range(3)))
    for event in first:
        acks.done(event)
    assert commit(app) == 3
    held, dead = taken(app, acks, consumed(app, range(3, 5)))
    acks.done(dead)
    assert commit(app) is None  # Faust alone would commit 5 here
    acks.done(held)
    assert commit(app) == 5


def test_records_behind_a_dropped_one_come_again_after_it(app: faust.App) -> None:
    acks = InOrderAcks()
    done_before, in_flight, held = taken(app, acks, consumed(app, range(3)))
    acks.done(done_before)
    assert acks.drop() == 2  # a rebalance
    acks.done(in_flight)  # its batch committed to the store after the drop
    # the rest of the fetch that brought them, still on its way
    assert taken(app, acks, consumed(app, range(3, 6))) == []
    assert commit(app) == 1
    # fetched again from the commit, in the generation the rebalance began
    again = taken(app, acks, consumed(app, range(1, 6), generation=2))
    assert [e.message.offset for e in again] == [1, 2, 3, 4, 5]
    for event in again:
        acks.done(event)
    assert commit(app) == 6
    assert not held.message.acked  # the dropped one itself never was


def test_a_partition_fetched_again_starts_over_without_a_new_generation(app: faust.App) -> None:
    acks = InOrderAcks()
    taken(app, acks, consumed(app, range(10, 12)))
    acks.drop()
    assert taken(app, acks, consumed(app, range(12, 13))) == []
    again = taken(app, acks, consumed(app, range(10, 13)))
    assert [e.message.offset for e in again] == [10, 11, 12]


def test_a_partition_back_from_another_owner_starts_where_that_one_committed(
    app: faust.App,
) -> None:
    acks = InOrderAcks()
    taken(app, acks, consumed(app, range(5, 8)))
    acks.drop()  # the partition moves away; its next owner commits up to 50
    back = taken(app, acks, consumed(app, range(50, 52), generation=3))
    assert [e.message.offset for e in back] == [50, 51]


def test_the_worker_drops_what_waits_for_acknowledgement_at_a_rebalance(tmp_path) -> None:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade(engine)
    worker = create_app(Settings(web_port=0), "127.0.0.1:1", engine)
    worker.topics._acking_topics.add(TOPIC)
    held = taken(worker, worker.acks, consumed(worker, range(2)))
    worker.on_rebalance_start()
    assert len(worker.acks) == 0
    for event in held:
        worker.acks.done(event)
    assert commit(worker) is None and not any(e.message.acked for e in held)
