"""The Faust application: topics, the intake agent and state loading on rebalance.

:class:`Worker` holds the app, its agents, timers and hook (one method each)
and the state they share; :func:`create_app` builds one and returns its app.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar, cast

import faust
from faust.types import TP, EventT
from sqlalchemy.engine import Engine

from churnwatch.engine.commit import Committed
from churnwatch.engine.intake import Intake
from churnwatch.engine.isolation import isolate
from churnwatch.events import INPUT_TOPICS, Event
from churnwatch.records import RawRecord
from churnwatch.settings import Settings
from churnwatch.store.errors import is_transient
from churnwatch.streams.acking import InOrderAcks
from churnwatch.streams.consumer import FetchWaitApp
from churnwatch.streams.credentials import faust_credentials
from churnwatch.streams.fold_process import Folding, FoldProcess, committer_for
from churnwatch.streams.health import Health
from churnwatch.streams.metrics import WorkerMetrics
from churnwatch.streams.ordering import EventTimeMerge, IdleClock
from churnwatch.streams.publisher import Publisher
from churnwatch.streams.web import register_web
from churnwatch.streams.wire import raw_record
from churnwatch.topics import (
    REKEYED,
    WINBACK_OUTCOMES,
)
from churnwatch.winback.recording import Recorded, record_outcomes

R = TypeVar("R", Committed, Recorded)
#: back-off between retries of a failed store step (seconds)
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0
#: how often delivered outbox records are marked, and unsent ones (older than
#: RESEND_AFTER_S, so that sends still under way are left alone) sent again
MARK_EVERY_S, RESEND_EVERY_S, RESEND_AFTER_S = 0.5, 5.0, 5.0
#: how many batches the intake may take in ahead of the one being folded
AHEAD_BATCHES = 3


class _OrderedApp(FetchWaitApp):
    """A Faust app that lets go of the records held for event-time order.

    Held records are not acknowledged, so their offsets are not committed; at a
    rebalance or a stop they are dropped, Faust stops waiting for them, and
    the broker delivers them again to the partition's next owner. So are the
    records acknowledged after them (:mod:`churnwatch.streams.acking`).
    """

    merge: EventTimeMerge[tuple[RawRecord, Event, EventT]] | None = None
    acks: InOrderAcks | None = None
    fold_process: FoldProcess | None = None

    def on_rebalance_start(self) -> None:
        """Drop the held records before Faust waits for in-flight ones."""
        super().on_rebalance_start()
        if self.merge is not None and (dropped := self.merge.drop()):
            self.log.info("rebalance: %d records held for ordering go back to the broker", dropped)
        if self.acks is not None:
            self.acks.drop()

    async def on_stop(self) -> None:
        """Drop the held records, stop the fold process, then stop as Faust does."""
        if self.merge is not None:
            self.merge.drop()
        if self.acks is not None:
            self.acks.drop()
        if self.fold_process is not None:
            await asyncio.to_thread(self.fold_process.close)
        await super().on_stop()


def app_options(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """The Faust settings of the worker's app (also the benchmarks' bare Faust agent)."""
    return {
        # ``host:port,host:port`` (kafka-python's form) as Faust's list of URLs
        "broker": [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()],
        "store": "memory://",
        "topic_partitions": settings.partitions,
        "topic_disable_leader": True,
        # Fast group joins; the embedded broker otherwise stalls ~half the timeout.
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.session_timeout_s / 4,
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": settings.web_port > 0,
        "web_port": settings.web_port or 6066,
        # Faust binds ``web_bind``; ``web_host`` only names the worker in its URL
        "web_bind": settings.web_host,
        "web_host": settings.web_host,
        # Faust's own pages (key routing, tables) would bypass the token check
        "web_router_enabled": False,
        "web_tables_enabled": False,
        "web_graph_enabled": False,
        "web_stats_enabled": False,
        "broker_credentials": faust_credentials(settings.kafka_security),
        # a send that cannot be delivered fails after this long and stays in
        # the outbox, to be sent again, rather than hang for Faust's 20 minutes
        "producer_request_timeout": settings.send_timeout_s,
    }


class Worker:
    """The worker: its Faust app, the agents, timers and hooks on it, and what they share.

    Each agent, timer and hook is one method, registered on the app by
    :meth:`_register`; the state they share (the event-time merge, the
    acknowledgements, the running counter ...) is fields of this object. The
    app's agents, timers and signal hold these bound methods, so the app keeps
    its worker alive.
    """

    def __init__(self, settings: Settings, bootstrap: str, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.app = _OrderedApp(
            settings.app_id,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            **app_options(settings, bootstrap),
        )
        self.metrics = WorkerMetrics()
        self.health = Health(stall_s=settings.health_stall_s)
        if settings.web_port > 0:
            register_web(self.app, engine, self.metrics, settings, self.health)
        self.input_names = (*INPUT_TOPICS, REKEYED)
        self.inputs = self.app.topic(
            *self.input_names, key_serializer="raw", value_serializer="raw"
        )
        self.publisher = Publisher(self.app, engine, self.metrics)
        self.intake_step = Intake(max_future_s=settings.max_future_s)
        # The hot copy of customer state lives in the committer and is reloaded from
        # the store on every assignment: the store decides. A changelog-backed Faust
        # table is deliberately not used: on the embedded broker its recovery after
        # a restart stalls the input stream (measured; its end offsets are too low,
        # README.md "Limits"), and a miss in the copy is read from the store anyway.
        self.committer: Folding = (
            FoldProcess(settings) if settings.fold_process else committer_for(settings, engine)
        )
        if isinstance(self.committer, FoldProcess):
            self.app.fold_process = self.committer
        self.clock = IdleClock()
        self.merge: EventTimeMerge[tuple[RawRecord, Event, EventT]] = EventTimeMerge(
            self.input_names,
            idle_s=settings.order_idle_s,
            max_held=settings.order_max_held,
            clock=self.clock,
            highwater=self.highwater,
        )
        self.acks = InOrderAcks()
        # the app lets both go at a rebalance or a stop (:class:`_OrderedApp`)
        self.app.merge, self.app.acks = self.merge, self.acks
        #: one batch is counted at a time
        self.counting = asyncio.Lock()
        #: the task counting beside the intake (:meth:`count_beside`), if any
        self.counter: asyncio.Future[None] | None = None
        self._register()

    def _register(self) -> None:
        """Connect the hook and add the timers and agents to the app, in today's order."""
        app = self.app
        # Faust types the receiver as a plain function, not a coroutine function
        app.on_partitions_assigned.connect(self.load_state_from_store)  # type: ignore[arg-type]
        app.timer(interval=MARK_EVERY_S)(self.mark_delivered)
        app.timer(interval=RESEND_EVERY_S)(self.resend_unsent)
        outcomes_in = app.topic(WINBACK_OUTCOMES, key_serializer="raw", value_serializer="raw")
        app.agent(outcomes_in, name="outcomes")(self.outcomes)
        app.agent(self.inputs, name="intake")(self.intake)
        release_every = max(self.settings.order_idle_s / 2, 0.05)
        app.timer(interval=release_every)(self.release_quiet_partitions)

    # -- hooks and timers --

    async def load_state_from_store(self, sender: Any, assigned: set[TP], **_: Any) -> None:
        """Reload the customer states of the input partitions just assigned; resend their outbox."""
        partitions = sorted({tp.partition for tp in assigned if tp.topic in self.input_names})
        self.health.lag.clear()
        count = await asyncio.to_thread(self.committer.reload, partitions)
        self.app.log.info("loaded %d customer states for partitions %s", count, partitions)
        # what a previous owner stored but did not get to send
        if sent := await self.publisher.delivery.resend(partitions):
            self.app.log.info("sending %d outbox records left unsent", sent)

    def owned(self) -> list[int]:
        """The input partitions this worker holds now."""
        consumer = self.app.consumer
        assigned = consumer.assignment() if consumer else set()
        return sorted({tp.partition for tp in assigned if tp.topic in self.input_names})

    async def mark_delivered(self) -> None:
        """Mark in the store what the broker has confirmed."""
        await self.publisher.delivery.mark()

    async def resend_unsent(self) -> None:
        """Send again what stayed unsent a while (a failed send), not only at assignment."""
        if self.app.rebalancing:
            return
        if sent := await self.publisher.delivery.resend(self.owned(), RESEND_AFTER_S):
            self.app.log.info("re-sent %d outbox records", sent)

    async def release_quiet_partitions(self) -> None:
        """Let go of what waited on topics that have since gone quiet."""
        if len(self.merge):
            self.count_beside()  # the counter runs on its own; a timer tick need not wait for it

    # -- the store --

    async def until_stored(
        self,
        step: Callable[[Sequence[Any]], R],
        items: Sequence[Any],
        record_of: Callable[[Any], RawRecord],
        empty: Callable[[], R],
    ) -> R:
        """Run a store step in a thread, retrying transient failures until it commits.

        A step that raised must not end the agent: Faust would ack the batch on
        the way out and its events would be lost. The store is idempotent and a
        failed step leaves nothing behind, so retrying the same batch is safe;
        while the store is unreachable the worker waits rather than drops data.
        A data error is no reason to wait: :func:`isolate` splits the batch and
        dead-letters the record that fails. Anything else unforeseen is retried
        with the same back-off rather than losing the batch.
        """
        delay = RETRY_FIRST_S
        while True:
            try:
                # SQL runs in a thread so that heartbeats and fetches go on meanwhile.
                result = await asyncio.to_thread(isolate, step, items, record_of, empty)
                self.health.failed_in_row = 0
                return result
            except Exception as exc:
                self.health.failed()
                kind = "transient" if is_transient(exc) else "unexpected"
                self.app.log.exception("store step failed; retrying in %.1f s (%s)", delay, kind)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    # -- the outcomes agent --

    async def outcomes(self, stream: faust.StreamT[Any]) -> None:
        """Record the win-back outcomes, batch by batch; dead-letter what cannot be."""
        settings = self.settings
        batches = cast(faust.Stream[Any], stream).take_events(
            settings.batch_size, within=settings.batch_within_s
        )
        async for events in batches:
            records = [raw_record(event) for event in events]
            self.metrics.outcomes.inc(len(records))
            recorded = await self.until_stored(
                partial(record_outcomes, self.engine, max_future_s=settings.max_future_s),
                records,
                _itself,
                Recorded,
            )
            await self.publisher.reject(recorded.dead_letters)

    # -- the intake agent: take in, order by event time, count beside --

    async def intake(self, stream: faust.StreamT[Any]) -> None:
        """Take in the input topics batch by batch, while health reports the agent running."""
        batches = cast(faust.Stream[Any], stream).take_events(
            self.settings.batch_size, within=self.settings.batch_within_s
        )
        self.health.agent_running = True
        try:
            async for events in batches:
                with self.clock.busy():
                    await self.take_in(events)
        finally:
            self.health.agent_running = False

    async def take_in(self, batch: Sequence[EventT[Any]]) -> None:
        """Decode a consumed batch, hold its valid records, count what may go."""
        # acknowledged in offset order only, or Faust commits past held records
        events = self.acks.track(batch)
        records = [raw_record(e) for e in events]
        # inline: a thread for it measured no faster, as the GIL is shared anyway
        decoded = self.intake_step.decode(records)
        self.metrics.observe_consumed(Counter(r.topic for r in records), decoded)
        await self.publisher.reject(decoded.dead_letters, decoded.misrouted)
        event_of = {id(record): e for record, e in zip(records, events, strict=True)}
        for record, event in decoded.accepted:
            held = event_of.pop(id(record))
            self.merge.add(
                record.topic,
                record.partition,
                (event.epoch_s, event.event_id),
                (record, event, held),
                offset=record.offset,
            )
        for rejected in event_of.values():  # dead-lettered or re-keyed: sent
            tp = rejected.message.tp
            self.merge.passed(tp.topic, tp.partition, rejected.message.offset)
            self.acks.done(rejected)
        self.observe_lag(events)
        self.health.consumed(len(self.merge))
        running = self.count_beside()
        # back-pressure: the intake runs at most a few batches ahead of the fold
        if len(self.merge) >= AHEAD_BATCHES * self.settings.batch_size:
            await asyncio.shield(running)

    def observe_lag(self, events: Iterable[EventT]) -> None:
        """Lag per partition: its end offset minus the position after this batch."""
        ends: dict[TP, int] = {}
        for event in events:
            msg = event.message
            ends[msg.tp] = max(ends.get(msg.tp, -1), msg.offset)
        for tp, offset in ends.items():
            highwater = self.app.consumer.highwater(tp)
            if highwater is not None:
                self.metrics.set_lag(tp.topic, tp.partition, highwater - offset - 1)
                self.health.lag[(tp.topic, tp.partition)] = highwater - offset - 1

    def highwater(self, topic: str, partition: int) -> int | None:
        """The high watermark of the latest fetch of an assigned topic partition."""
        tp = TP(topic, partition)
        consumer = self.app.consumer
        return consumer.highwater(tp) if tp in consumer.assignment() else None

    def count_beside(self) -> asyncio.Future[None]:
        """Counting beside the intake: the running counter, or a new one.

        While a batch folds (in the fold process, or in a thread) the event loop
        goes on taking in and ordering the next records. A failure of counting
        ends the intake agent, as it would have inline.
        """
        counter = self.counter
        if counter is not None and counter.done():
            failed = None if counter.cancelled() else counter.exception()
            self.counter = None
            if failed is not None:
                raise failed
        if self.counter is None:
            self.counter = asyncio.ensure_future(self.count_until_held())
            self.counter.add_done_callback(self._log_failure)
        return self.counter

    def _log_failure(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and (failed := task.exception()) is not None:
            self.app.log.error("counting failed: %r", failed, exc_info=failed)

    async def count_until_held(self) -> None:
        """Count what the merge lets go, batch after batch, until it holds back the rest."""
        with self.clock.busy():
            while await self.count_released():
                pass

    async def count_released(self) -> bool:
        """Fold what the merge lets go, publish what it raised, acknowledge it.

        Returns whether there was anything to count.
        """
        async with self.counting:
            waited = self.merge.waited
            ready = self.merge.release(force=self.app.rebalancing)
            if not ready:
                return False
            self.metrics.order_waited.inc(self.merge.waited - waited)
            started = time.perf_counter()
            # the batch in flight waits too, until it commits
            self.health.consumed(len(self.merge) + len(ready))
            accepted = [(r, e) for r, e, _ in ready]
            result = await self.until_stored(self.committer.commit, accepted, _first, Committed)
            self.health.committed(len(self.merge))
            self.metrics.observe_batch(result, time.perf_counter() - started)
            await self.publisher.publish(result)
            for _, _, held in ready:
                self.acks.done(held)
            return True


def create_app(settings: Settings, bootstrap: str, engine: Engine) -> _OrderedApp:
    """Build the worker's Faust app against ``bootstrap`` and the store ``engine``.

    The app of a :class:`Worker`, which its agents, timers and hook keep alive.
    """
    return Worker(settings, bootstrap, engine).app


def _itself(record: RawRecord) -> RawRecord:
    return record


def _first(pair: tuple[RawRecord, Event]) -> RawRecord:
    return pair[0]
