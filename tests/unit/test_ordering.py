"""The event-time merge of a partition's input topics."""

from __future__ import annotations

import random
import threading

from churnwatch.streams.ordering import EventTimeMerge, IdleClock

TOPICS = ("purchases", "complaints", "engagement")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def merge(clock: Clock, idle_s: float = 1.0, max_held: int = 1000) -> EventTimeMerge[str]:
    return EventTimeMerge(TOPICS, idle_s=idle_s, max_held=max_held, clock=clock)


def test_a_record_waits_until_every_topic_of_its_partition_is_past_it() -> None:
    clock = Clock()
    m = merge(clock)
    m.add("purchases", 0, (10.0, "p10"), "p10")
    m.add("purchases", 0, (30.0, "p30"), "p30")
    m.add("complaints", 0, (20.0, "c20"), "c20")
    assert m.release() == []  # engagement may still bring something earlier
    m.add("engagement", 0, (25.0, "e25"), "e25")
    # complaints ran dry at 20 and is not idle: nothing after c20 may go
    assert m.release() == ["p10", "c20"]
    m.add("complaints", 0, (40.0, "c40"), "c40")
    assert m.release() == ["e25"]  # engagement ran dry: p30 waits for it
    m.add("engagement", 0, (45.0, "e45"), "e45")
    assert m.release() == ["p30"] and len(m) == 2


def test_partitions_are_merged_independently() -> None:
    clock = Clock()
    m = merge(clock)
    for at, topic in enumerate(TOPICS):
        m.add(topic, 1, (at, f"{topic}-1"), f"{topic}-1")
        m.add(topic, 1, (at + 10, f"{topic}-2"), f"{topic}-2")
    m.add("purchases", 0, (1.0, "p0"), "p0")  # partition 0 waits for its other topics
    # partition 1 runs until purchases runs dry (after its second record)
    assert m.release() == ["purchases-1", "complaints-1", "engagement-1", "purchases-2"]


def test_a_quiet_topic_stops_holding_the_others_back_after_idle_s() -> None:
    clock = Clock()
    m = merge(clock, idle_s=1.0)
    m.add("purchases", 0, (1.0, "a"), "a")
    m.add("purchases", 0, (2.0, "b"), "b")
    clock.now = 0.9
    assert m.release() == []
    clock.now = 1.0
    assert m.release() == ["a", "b"] and len(m) == 0
    assert m.waited == 2  # both went only because the other topics fell idle


def test_force_and_the_cap_let_records_go_oldest_first() -> None:
    clock = Clock()
    m = merge(clock, max_held=2)
    m.add("purchases", 0, (3.0, "c"), "c")
    m.add("complaints", 0, (1.0, "a"), "a")
    m.add("purchases", 1, (2.0, "b"), "b")
    assert m.release() == ["a"]  # three held, two allowed: the oldest goes
    assert m.release(force=True) == ["c", "b"]  # partition by partition


def test_dropped_records_are_forgotten() -> None:
    clock = Clock()
    m = merge(clock)
    m.add("purchases", 0, (1.0, "a"), "a")
    assert m.drop() == 1 and len(m) == 0 and m.release(force=True) == []


def test_the_merge_equals_event_time_order_however_the_topics_interleave() -> None:
    rng = random.Random(5)
    events = sorted((rng.uniform(0, 1000), f"e{i}", rng.choice(TOPICS)) for i in range(600))
    per_topic = {t: [e for e in events if e[2] == t] for t in TOPICS}
    clock = Clock()
    m = merge(clock)
    out: list[str] = []
    while any(per_topic.values()):  # fetches of random size from random topics
        topic = rng.choice([t for t in TOPICS if per_topic[t]])
        n = rng.randint(1, 40)
        take, per_topic[topic] = per_topic[topic][:n], per_topic[topic][n:]
        for at, eid, _ in take:
            m.add(topic, 0, (at, eid), eid)
        out += m.release()
    clock.now = 5.0
    out += m.release()
    assert out == [eid for _, eid, _ in events]


def test_the_idle_clock_stands_still_while_the_worker_is_busy() -> None:
    wall = Clock()
    clock = IdleClock(wall)
    wall.now = 2.0
    assert clock() == 2.0
    with clock.busy():
        wall.now = 5.0
        with clock.busy():  # nested: counted once
            wall.now = 6.0
        assert clock() == 2.0
    wall.now = 7.0
    assert clock() == 3.0
    m = EventTimeMerge(TOPICS, idle_s=1.0, max_held=10, clock=clock)
    m.add("purchases", 0, (1.0, "a"), "a")
    with clock.busy():  # folding for 10 s does not make the other topics idle
        wall.now = 17.0
        assert m.release() == []
    wall.now = 18.0
    assert m.release() == ["a"]


def test_a_drop_from_another_thread_waits_for_a_release_in_progress() -> None:
    # Faust starts a rebalance from its consumer thread while the event loop may
    # be releasing: the drop lands in the middle of the merge's comparisons here.
    m = merge(Clock(), idle_s=0.0)
    dropped: list[int] = []
    dropper = threading.Thread(target=lambda: dropped.append(m.drop()))

    class DropsMidRelease(str):
        def __lt__(self, other: str) -> bool:
            if not dropper.is_alive() and not dropped:
                dropper.start()
                dropper.join(timeout=0.5)  # a drop that does not wait is done by now
            return str.__lt__(self, other)

    m.add("purchases", 0, (1.0, DropsMidRelease("p")), "p")
    m.add("complaints", 0, (1.0, "c"), "c")
    m.add("engagement", 0, (2.0, "e"), "e")
    released = m.release()
    dropper.join()
    # the release took all three; the drop came after it, found nothing, and
    # the count never went below zero
    assert sorted(released) == ["c", "e", "p"] and dropped == [0] and len(m) == 0


class Watermarks:
    """High watermarks as a consumer's latest fetch reported them."""

    def __init__(self, **known: int) -> None:
        self.known = {(topic, 0): highwater for topic, highwater in known.items()}

    def __call__(self, topic: str, partition: int) -> int | None:
        return self.known.get((topic, partition))


def test_a_caught_up_topic_does_not_hold_the_others_back() -> None:
    clock = Clock()
    # complaints delivered up to its watermark; engagement has never held a record
    marks = Watermarks(purchases=2, complaints=5, engagement=0)
    m = EventTimeMerge(TOPICS, idle_s=1.0, max_held=10, clock=clock, highwater=marks)
    m.add("complaints", 0, (1.0, "c1"), "c1", offset=4)
    m.add("purchases", 0, (2.0, "p2"), "p2", offset=0)
    m.add("purchases", 0, (3.0, "p3"), "p3", offset=1)
    assert m.release() == ["c1", "p2", "p3"] and len(m) == 0  # no idle time passed
    assert m.waited == 0


def test_a_topic_behind_its_watermark_holds_the_others_until_its_records_come() -> None:
    clock = Clock()
    marks = Watermarks(purchases=1, complaints=6, engagement=0)
    m = EventTimeMerge(TOPICS, idle_s=1.0, max_held=10, clock=clock, highwater=marks)
    m.add("complaints", 0, (1.0, "c1"), "c1", offset=4)  # offset 5 is fetched, not delivered
    m.add("purchases", 0, (3.0, "p3"), "p3", offset=0)
    assert m.release() == ["c1"]  # the next complaint may come before p3
    clock.now = 0.9
    assert m.release() == []
    m.add("complaints", 0, (2.0, "c2"), "c2", offset=5)
    assert m.release() == ["c2", "p3"]


def test_a_record_passed_by_counts_towards_being_caught_up() -> None:
    clock = Clock()
    marks = Watermarks(purchases=1, complaints=2, engagement=0)
    m = EventTimeMerge(TOPICS, idle_s=1.0, max_held=10, clock=clock, highwater=marks)
    m.add("complaints", 0, (1.0, "c1"), "c1", offset=0)
    m.add("purchases", 0, (3.0, "p3"), "p3", offset=0)
    assert m.release() == ["c1"]
    m.passed("complaints", 0, 1)  # a dead letter: delivered, never held
    assert m.release() == ["p3"]


def test_without_a_watermark_or_offsets_a_topic_waits_idle_s() -> None:
    clock = Clock()
    # engagement not fetched yet; complaints holds records fetched before this run
    marks = Watermarks(purchases=1, complaints=7)
    m = EventTimeMerge(TOPICS, idle_s=1.0, max_held=10, clock=clock, highwater=marks)
    m.add("purchases", 0, (3.0, "p3"), "p3", offset=0)
    assert m.release() == []
    marks.known[("engagement", 0)] = 0
    assert m.release() == []  # complaints is still owed offsets 0-6
    clock.now = 1.0
    assert m.release() == ["p3"] and m.waited == 1
    # a record added without its offset never makes its topic caught up
    m.add("engagement", 0, (4.0, "e4"), "e4")
    m.add("purchases", 0, (5.0, "p5"), "p5", offset=1)
    marks.known[("engagement", 0)] = 1
    assert m.release() == ["e4"]
    assert m.waited == 2  # complaints, owed records, was passed over for being idle


def test_the_watermarks_keep_event_time_order_while_records_are_still_produced() -> None:
    # A producer writes events in event-time order to three topics while the consumer
    # fetches (one fetch reads every topic's watermark at once) and hands the fetched
    # records on in chunks of random size; the clock never moves, so only the
    # watermarks let records go, and in event-time order throughout.
    rng = random.Random(11)
    events = sorted((rng.uniform(0, 1000), f"e{i}", rng.choice(TOPICS)) for i in range(800))
    logs: dict[str, list[tuple[float, str]]] = {t: [] for t in TOPICS}
    fetched: dict[str, list[tuple[int, float, str]]] = {t: [] for t in TOPICS}
    position = dict.fromkeys(TOPICS, 0)
    marks = Watermarks()
    m = EventTimeMerge(TOPICS, idle_s=1.0, max_held=10_000, clock=Clock(), highwater=marks)
    produced, out = 0, []

    def fetch() -> None:
        for topic in TOPICS:
            log = logs[topic]
            fetched[topic] += [(o, *log[o]) for o in range(position[topic], len(log))]
            position[topic] = len(log)
            marks.known[(topic, 0)] = len(log)

    while produced < len(events) or any(fetched.values()):
        step = rng.random()
        if step < 0.3 and produced < len(events):
            for at, eid, topic in events[produced : produced + rng.randint(1, 30)]:
                logs[topic].append((at, eid))
                produced += 1
        elif step < 0.5:
            fetch()
        elif ready := [t for t in TOPICS if fetched[t]]:
            topic = rng.choice(ready)
            n = rng.randint(1, 20)
            chunk, fetched[topic] = fetched[topic][:n], fetched[topic][n:]
            for offset, at, eid in chunk:
                m.add(topic, 0, (at, eid), eid, offset=offset)
            out += m.release()
    fetch()
    out += m.release()
    assert out == [eid for _, eid, _ in events] and len(m) == 0
