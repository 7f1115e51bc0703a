"""The Faust application: topics, the intake agent and state loading on rebalance."""

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


def create_app(settings: Settings, bootstrap: str, engine: Engine) -> _OrderedApp:
    """Build the worker's Faust app against ``bootstrap`` and the store ``engine``."""
    app = _OrderedApp(
        settings.app_id,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        **app_options(settings, bootstrap),
    )
    metrics = WorkerMetrics()
    health = Health(stall_s=settings.health_stall_s)
    if settings.web_port > 0:
        register_web(app, engine, metrics, settings, health)
    input_names = (*INPUT_TOPICS, REKEYED)
    inputs = app.topic(*input_names, key_serializer="raw", value_serializer="raw")
    publisher = Publisher(app, engine, metrics)
    intake_step = Intake(max_future_s=settings.max_future_s)
    committer: Folding = (
        FoldProcess(settings) if settings.fold_process else committer_for(settings, engine)
    )
    if isinstance(committer, FoldProcess):
        app.fold_process = committer

    # The hot copy of customer state lives in the committer and is reloaded from
    # the store on every assignment: the store decides. A changelog-backed Faust
    # table is deliberately not used: on the embedded broker its recovery after
    # a restart stalls the input stream (measured; DESIGN.md's high-watermark
    # bug), and a miss in the copy is read from the store anyway.
    # Faust types the receiver as a plain function, not a coroutine function
    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def load_state_from_store(sender: Any, assigned: set[TP], **_: Any) -> None:
        partitions = sorted({tp.partition for tp in assigned if tp.topic in input_names})
        health.lag.clear()
        count = await asyncio.to_thread(committer.reload, partitions)
        app.log.info("loaded %d customer states for partitions %s", count, partitions)
        # what a previous owner stored but did not get to send
        if sent := await publisher.delivery.resend(partitions):
            app.log.info("sending %d outbox records left unsent", sent)

    def owned() -> list[int]:
        assigned = app.consumer.assignment() if app.consumer else set()
        return sorted({tp.partition for tp in assigned if tp.topic in input_names})

    @app.timer(interval=MARK_EVERY_S)
    async def mark_delivered() -> None:
        """Mark in the store what the broker has confirmed."""
        await publisher.delivery.mark()

    @app.timer(interval=RESEND_EVERY_S)
    async def resend_unsent() -> None:
        """Send again what stayed unsent a while (a failed send), not only at assignment."""
        if app.rebalancing:
            return
        if sent := await publisher.delivery.resend(owned(), RESEND_AFTER_S):
            app.log.info("re-sent %d outbox records", sent)

    async def until_stored(
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
                health.failed_in_row = 0
                return result
            except Exception as exc:
                health.failed()
                kind = "transient" if is_transient(exc) else "unexpected"
                app.log.exception("store step failed; retrying in %.1f s (%s)", delay, kind)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def observe_lag(events: Iterable[EventT]) -> None:
        """Lag per partition: its end offset minus the position after this batch."""
        ends: dict[TP, int] = {}
        for event in events:
            msg = event.message
            ends[msg.tp] = max(ends.get(msg.tp, -1), msg.offset)
        for tp, offset in ends.items():
            highwater = app.consumer.highwater(tp)
            if highwater is not None:
                metrics.set_lag(tp.topic, tp.partition, highwater - offset - 1)
                health.lag[(tp.topic, tp.partition)] = highwater - offset - 1

    outcomes_in = app.topic(WINBACK_OUTCOMES, key_serializer="raw", value_serializer="raw")

    @app.agent(outcomes_in, name="outcomes")
    async def outcomes(stream: faust.StreamT[Any]) -> None:
        batches = cast(faust.Stream[Any], stream).take_events(
            settings.batch_size, within=settings.batch_within_s
        )
        async for events in batches:
            records = [raw_record(event) for event in events]
            metrics.outcomes.inc(len(records))
            recorded = await until_stored(
                partial(record_outcomes, engine, max_future_s=settings.max_future_s),
                records,
                _itself,
                Recorded,
            )
            await publisher.reject(recorded.dead_letters)

    def highwater(topic: str, partition: int) -> int | None:
        """The high watermark of the latest fetch of an assigned topic partition."""
        tp = TP(topic, partition)
        consumer = app.consumer
        return consumer.highwater(tp) if tp in consumer.assignment() else None

    clock = IdleClock()
    merge: EventTimeMerge[tuple[RawRecord, Event, EventT]] = EventTimeMerge(
        input_names,
        idle_s=settings.order_idle_s,
        max_held=settings.order_max_held,
        clock=clock,
        highwater=highwater,
    )
    app.merge = merge
    acks = app.acks = InOrderAcks()
    counting = asyncio.Lock()

    async def count_released() -> bool:
        """Fold what the merge lets go, publish what it raised, acknowledge it.

        Returns whether there was anything to count.
        """
        async with counting:
            ready = merge.release(force=app.rebalancing)
            if not ready:
                return False
            started = time.perf_counter()
            # the batch in flight waits too, until it commits
            health.consumed(len(merge) + len(ready))
            accepted = [(r, e) for r, e, _ in ready]
            result = await until_stored(committer.commit, accepted, _first, Committed)
            health.committed(len(merge))
            metrics.observe_batch(result, time.perf_counter() - started)
            await publisher.publish(result)
            for _, _, held in ready:
                acks.done(held)
            return True

    counter: asyncio.Future[None] | None = None

    async def count_until_held() -> None:
        """Count what the merge lets go, batch after batch, until it holds back the rest."""
        with clock.busy():
            while await count_released():
                pass

    def count_beside() -> asyncio.Future[None]:
        """Counting beside the intake: the running counter, or a new one.

        While a batch folds (in the fold process, or in a thread) the event loop
        goes on taking in and ordering the next records. A failure of counting
        ends the intake agent, as it would have inline.
        """
        nonlocal counter
        if counter is not None and counter.done():
            failed = None if counter.cancelled() else counter.exception()
            counter = None
            if failed is not None:
                raise failed
        if counter is None:
            counter = asyncio.ensure_future(count_until_held())
            counter.add_done_callback(_log_failure)
        return counter

    def _log_failure(task: asyncio.Future[None]) -> None:
        if not task.cancelled() and (failed := task.exception()) is not None:
            app.log.error("counting failed: %r", failed, exc_info=failed)

    async def take_in(batch: Sequence[EventT[Any]]) -> None:
        """Decode a consumed batch, hold its valid records, count what may go."""
        # acknowledged in offset order only, or Faust commits past held records
        events = acks.track(batch)
        records = [raw_record(e) for e in events]
        # inline: a thread for it measured no faster, as the GIL is shared anyway
        decoded = intake_step.decode(records)
        metrics.observe_consumed(Counter(r.topic for r in records), decoded)
        await publisher.reject(decoded.dead_letters, decoded.misrouted)
        event_of = {id(record): e for record, e in zip(records, events, strict=True)}
        for record, event in decoded.accepted:
            held = event_of.pop(id(record))
            merge.add(
                record.topic,
                record.partition,
                (event.epoch_s, event.event_id),
                (record, event, held),
                offset=record.offset,
            )
        for rejected in event_of.values():  # dead-lettered or re-keyed: sent
            tp = rejected.message.tp
            merge.passed(tp.topic, tp.partition, rejected.message.offset)
            acks.done(rejected)
        observe_lag(events)
        health.consumed(len(merge))
        running = count_beside()
        # back-pressure: the intake runs at most a few batches ahead of the fold
        if len(merge) >= AHEAD_BATCHES * settings.batch_size:
            await asyncio.shield(running)

    @app.agent(inputs, name="intake")
    async def intake(stream: faust.StreamT[Any]) -> None:
        batches = cast(faust.Stream[Any], stream).take_events(
            settings.batch_size, within=settings.batch_within_s
        )
        health.agent_running = True
        try:
            async for events in batches:
                with clock.busy():
                    await take_in(events)
        finally:
            health.agent_running = False

    @app.timer(interval=max(settings.order_idle_s / 2, 0.05))
    async def release_quiet_partitions() -> None:
        """Let go of what waited on topics that have since gone quiet."""
        if len(merge):
            count_beside()  # the counter runs on its own; a timer tick need not wait for it

    return app


def _itself(record: RawRecord) -> RawRecord:
    return record


def _first(pair: tuple[RawRecord, Event]) -> RawRecord:
    return pair[0]
