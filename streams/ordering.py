"""Event-time order across input topics: a k-way merge per partition.

The input topics are co-partitioned by ``customer_id``, so partition ``p`` of
``purchases``, ``complaints``, ``engagement`` and ``rekeyed`` together hold
every event of one lane (:mod:`churnwatch.engine.lanes`). A consumer sees those
topics interleaved however the fetches happened to fall; counting them in
that order would make the alerts depend on fetch timing. The merge holds each
record until every other topic of its partition has a record at or after it
waiting, then releases the smallest: a k-way merge of the topics, each in its
own offset order. What a lane counts then depends on the topics' contents,
not on timing, and equals replay's event-time order whenever each topic
partition is in event-time order itself.

A topic partition that is caught up does not hold the others back: its last
record delivered is the last the broker had in the latest fetch (offset + 1
has reached that fetch's high watermark), so nothing earlier is in the broker
for it. (A record still on its way there is counted when it comes, late: a
stream cannot know it is coming.) One fetch asks for every partition at once,
so that watermark is no older than the fetch that brought the records it would
hold back. (The fetch response's watermark is exact on the embedded broker too;
only its ListOffsets answer is not: README.md, "Limits".) A topic partition that is behind, or whose
watermark is not known yet, holds the others until it has delivered nothing
for ``idle_s`` seconds: it has nothing to say, or is too slow to wait for.
Those seconds are :class:`IdleClock` seconds, which stand still while the
worker is busy: nothing arrives while it folds, and that silence is its own,
not the topic's. At most ``max_held`` records are held; past that the oldest
go out regardless. :attr:`EventTimeMerge.waited` counts the records let go
while a topic of their partition was passed over for being idle, not caught up:
the records that the idle rule, and so a wait of up to ``idle_s``, let go.

Faust calls ``on_rebalance_start`` from its consumer thread, so a merge may be
dropped while the event loop releases from it: each call holds a lock.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")
#: ``(epoch seconds, event_id)``: the order the lanes and replay count in
SortKey = tuple[float, str]
#: the high watermark of a topic partition's latest fetch; ``None``: not fetched yet
Highwater = Callable[[str, int], int | None]


def _unknown(topic: str, partition: int) -> None:
    return None


class IdleClock:
    """Monotonic seconds that do not count while the worker is inside :meth:`busy`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._busy_s = 0.0
        self._depth = 0
        self._since = 0.0

    def __call__(self) -> float:
        now = self._clock()
        ongoing = now - self._since if self._depth else 0.0
        return now - self._busy_s - ongoing

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Stop the clock for the block; nested and overlapping blocks count once."""
        if not self._depth:
            self._since = self._clock()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth:
                self._busy_s += self._clock() - self._since


class EventTimeMerge(Generic[T]):
    """Holds records per topic partition and releases each partition in event-time order."""

    def __init__(
        self,
        topics: Iterable[str],
        *,
        idle_s: float,
        max_held: int,
        clock: Callable[[], float] = time.monotonic,
        highwater: Highwater = _unknown,
    ) -> None:
        self.topics = tuple(topics)
        self.idle_s = idle_s
        self.max_held = max_held
        self.clock = clock
        self.highwater = highwater
        self._queues: dict[tuple[str, int], deque[tuple[SortKey, T]]] = {}
        #: when each topic partition last delivered (or was first heard of)
        self._heard: dict[tuple[str, int], float] = {}
        #: the offset after each topic partition's last record delivered
        self._next: dict[tuple[str, int], int] = {}
        self._held = 0
        #: records let go only once a topic of their partition had fallen idle
        self.waited = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._held

    def add(
        self, topic: str, partition: int, key: SortKey, item: T, *, offset: int | None = None
    ) -> None:
        """Hold ``item``, the next record of ``topic``'s ``partition`` (at ``offset``, if known).

        Without offsets a topic partition never counts as caught up: only ``idle_s`` lets
        it stop holding the others back.
        """
        with self._lock:
            self._delivered(topic, partition, offset)
            self._queues.setdefault((topic, partition), deque()).append((key, item))
            self._held += 1

    def passed(self, topic: str, partition: int, offset: int) -> None:
        """The record at ``offset`` was delivered but is not held (a dead letter, say)."""
        with self._lock:
            self._delivered(topic, partition, offset)

    def _delivered(self, topic: str, partition: int, offset: int | None) -> None:
        now = self.clock()
        for other in self.topics:  # a topic first heard of now may still deliver
            self._heard.setdefault((other, partition), now)
        self._heard[(topic, partition)] = now
        if offset is not None:
            self._next[(topic, partition)] = offset + 1

    def release(self, *, force: bool = False) -> list[T]:
        """Every record that may go now, each partition's in merged order.

        ``force`` releases everything held (a rebalance, say, must not wait).
        """
        with self._lock:
            return self._release(force)

    def _release(self, force: bool) -> list[T]:
        now = self.clock()
        out: list[T] = []
        for partition in sorted({p for _, p in self._queues}):
            out += self._release_partition(partition, now, force)
        while self._held > self.max_held:  # over the cap: the oldest go out
            out += self._pop_oldest()
        return out

    def drop(self) -> int:
        """Forget every held record; return how many.

        They were never acknowledged, so the broker delivers them again to
        whoever owns their partition next.
        """
        with self._lock:
            dropped = self._held
            self._queues.clear()
            self._heard.clear()
            self._next.clear()
            self._held = 0
            return dropped

    def _release_partition(self, partition: int, now: float, force: bool) -> list[T]:
        queues = [self._queues.get((topic, partition)) for topic in self.topics]
        # a topic with nothing held holds the others back unless it is quiet
        empty = [
            self._quiet_by(topic, partition, now)
            for topic, queue in zip(self.topics, queues, strict=True)
            if not queue
        ]
        if not force and None in empty:
            return []
        heads = [(queue[0][0], i) for i, queue in enumerate(queues) if queue]
        heapq.heapify(heads)
        out: list[T] = []
        while heads:
            _, i = heapq.heappop(heads)
            queue = queues[i]
            out.append(queue.popleft()[1])  # type: ignore[union-attr]
            self._held -= 1
            if queue:
                heapq.heappush(heads, (queue[0][0], i))
            elif not force and self._quiet_by(self.topics[i], partition, now) is None:
                break  # this topic may still deliver something earlier
        if not force and "idle" in empty:
            self.waited += len(out)
        return out

    def _quiet_by(self, topic: str, partition: int, now: float) -> str | None:
        """Why ``topic``'s ``partition`` holds nothing back: ``caught-up``, ``idle`` or ``None``.

        ``caught-up``: it has nothing pending in the broker; ``idle``: it has
        delivered nothing for ``idle_s``; ``None``: it may still deliver earlier records.
        """
        highwater = self.highwater(topic, partition)
        # never delivered: caught up only if the partition has never held a record
        if highwater is not None and self._next.get((topic, partition), 0) >= highwater:
            return "caught-up"
        if now - self._heard.get((topic, partition), now) >= self.idle_s:
            return "idle"
        return None

    def _pop_oldest(self) -> list[T]:
        queue = min((q for q in self._queues.values() if q), key=lambda q: q[0][0])
        self._held -= 1
        return [queue.popleft()[1]]
