"""Sending the outbox: a record is marked sent from its own delivery result only.

aiokafka's ``flush()`` returns whether or not the buffered sends succeeded,
so marking a batch after it would mark failed sends too. Here each send's
future reports its own outcome; the delivered ids are marked in the store on
a timer, and what stays unsent (a failed send, a worker that died) is sent
again by :meth:`Delivery.resend` on a timer and at every assignment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from functools import partial
from typing import Any, cast

import faust
from sqlalchemy.engine import Engine

from churnwatch import store
from churnwatch.streams import outbox

log = logging.getLogger(__name__)
#: what the outbox sends, and the field that names each record
KINDS = {"alerts": "alert_id", "tasks": "task_id", "changes": "change_id"}


class Delivery:
    """Sends outbox records to their topics and marks each one once it is delivered."""

    def __init__(self, engine: Engine, topics: Mapping[str, faust.TopicT]) -> None:
        self.engine = engine
        self.topics = dict(topics)
        #: ``(kind, id)`` of every send still waiting for its result
        self.in_flight: set[tuple[str, str]] = set()
        self._delivered: dict[str, list[str]] = {kind: [] for kind in KINDS}
        self.failed = 0

    async def send(self, kind: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Send ``records`` of ``kind``; each is marked only if its own send succeeds."""
        key_field = KINDS[kind]
        for record in records:
            ident = record[key_field]
            if (kind, ident) in self.in_flight:
                continue  # a resend while the first send is still pending
            self.in_flight.add((kind, ident))
            try:
                future = await self.topics[kind].send(
                    key=record["customer_id"].encode(), value=record
                )
            except Exception:
                self.in_flight.discard((kind, ident))
                self.failed += 1
                log.exception("could not send %s %s; it stays in the outbox", kind, ident)
                continue
            pending = cast("asyncio.Future[Any]", future)
            pending.add_done_callback(partial(self._done, kind, ident))

    def _done(self, kind: str, ident: str, future: asyncio.Future) -> None:
        self.in_flight.discard((kind, ident))
        if future.cancelled() or future.exception() is not None:
            self.failed += 1
            log.warning(
                "%s %s was not delivered (%r); it stays in the outbox",
                kind,
                ident,
                None if future.cancelled() else future.exception(),
            )
            return
        self._delivered[kind].append(ident)

    async def mark(self) -> int:
        """Mark what was delivered since the last call; return how many."""
        taken = {kind: ids for kind, ids in self._delivered.items()}
        self._delivered = {kind: [] for kind in KINDS}
        count = sum(len(ids) for ids in taken.values())
        if count:
            try:
                await asyncio.to_thread(
                    outbox.mark_sent, self.engine, taken["alerts"], taken["tasks"], taken["changes"]
                )
            except Exception:
                # unmarked records are sent again later: at-least-once, never lost
                log.exception("could not mark %d delivered records; they will be resent", count)
                return 0
        return count

    async def resend(self, partitions: Iterable[int], older_than_s: float = 0.0) -> int:
        """Send again what is unsent for the customers of ``partitions``; return how many."""
        parts = list(partitions)
        if not parts:
            return 0
        before = store.utcnow() - timedelta(seconds=older_than_s) if older_than_s else None
        try:
            unsent = await asyncio.to_thread(
                outbox.pending, self.engine, parts, stored_before=before
            )
        except Exception:
            # the store is away: the records wait there, and the next call sends them
            log.exception("could not read the outbox; trying again later")
            return 0
        count = 0
        for kind in KINDS:
            records = [
                r for r in getattr(unsent, kind) if (kind, r[KINDS[kind]]) not in self.in_flight
            ]
            count += len(records)
            await self.send(kind, records)
        return count
