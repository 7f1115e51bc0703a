"""Acknowledgements in offset order, one topic partition at a time.

Faust commits a partition up to the end of the first unbroken run of offsets
acknowledged since its last commit, and before any commit, or when only the
record at the committed offset is missing, that run may start past a record
nobody acknowledged yet: it takes acknowledgements to come in offset order.
The worker finishes records out of that order: a dead letter or a re-keyed
record at once, a record held for event-time order later. Handed straight to
Faust, those acknowledgements commit offsets past records still held; a worker
killed then, or a rebalance that drops what was held, loses them, as the next
owner starts after them.

:class:`InOrderAcks` passes a partition's acknowledgements on in the order its
records came: a finished record waits for every earlier one of its partition.
After :meth:`InOrderAcks.drop` the dropped records come again, so a record
fetched behind one of them before the drop (a batch already on its way, of the
consumer generation the drop ended) is left unacknowledged, to come again
after them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from faust.types import TP, EventT


class _Entry:
    __slots__ = ("done", "event")

    def __init__(self, event: EventT) -> None:
        self.event = event
        self.done = False


class InOrderAcks:
    """Acknowledges each topic partition's records in the order they arrived."""

    def __init__(self) -> None:
        #: each partition's records not yet acknowledged, in arrival order
        self._pending: dict[TP, deque[_Entry]] = {}
        self._entries: dict[int, _Entry] = {}
        #: per partition, the first offset dropped and the last consumer
        #: generation of those dropped, until the partition starts over
        self._dropped: dict[TP, tuple[int, int | None]] = {}
        # Faust calls on_rebalance_start, and so drop, from its consumer thread
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def track(self, events: Iterable[EventT]) -> list[EventT]:
        """Take over acknowledging ``events``; return the ones to process.

        Each gets one more reference, so the batch's own acknowledgement leaves
        it unacknowledged. Left out (and never acknowledged) are those fetched
        behind a record dropped since: they come again after it.
        """
        fresh: list[EventT] = []
        with self._lock:
            for event in events:
                message = event.message
                message.incref()
                tp = message.tp
                if tp in self._dropped:
                    if _fetched_behind(message.offset, message.generation_id, self._dropped[tp]):
                        continue
                    # fetched again from its commit, or in a later generation
                    del self._dropped[tp]
                entry = _Entry(event)
                self._pending.setdefault(tp, deque()).append(entry)
                self._entries[id(event)] = entry
                fresh.append(event)
        return fresh

    def done(self, event: EventT) -> None:
        """``event`` is finished: acknowledge it once every earlier one of its partition is."""
        with self._lock:
            entry = self._entries.get(id(event))
            if entry is None or entry.event is not event:
                return  # dropped since: it comes again
            del self._entries[id(event)]
            entry.done = True
            tp = event.message.tp
            pending = self._pending[tp]
            while pending and pending[0].done:
                pending.popleft().event.ack()
            if not pending:
                del self._pending[tp]

    def drop(self) -> int:
        """Forget every record not yet acknowledged; return how many.

        They were never acknowledged, so the broker delivers them again.
        """
        with self._lock:
            for tp, pending in self._pending.items():
                generations = [entry.event.message.generation_id for entry in pending]
                known = [g for g in generations if g is not None]
                last = max(known) if len(known) == len(generations) else None
                self._dropped[tp] = (pending[0].event.message.offset, last)
            dropped = len(self._entries)
            self._pending.clear()
            self._entries.clear()
            return dropped


def _fetched_behind(offset: int, generation: int | None, dropped: tuple[int, int | None]) -> bool:
    """Whether a record came from the fetch that delivered a dropped record before it.

    A partition fetched again starts at its commit, which is never past its
    first dropped record; a later consumer generation starts over too (the
    partition may have been away, and committed further by another owner).
    Without generations to compare, the offset decides alone.
    """
    first, dropped_generation = dropped
    later = (
        generation is not None
        and dropped_generation is not None
        and generation > dropped_generation
    )
    return not later and offset > first
