"""The Faust application: topics, the intake agent and state loading on rebalance."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

import faust
from churnwatch.streams.web import register_web
from faust.types import TP, EventT
from sqlalchemy.engine import Engine

from churnwatch import outbox, store
from churnwatch.events import INPUT_TOPICS, Event
from churnwatch.fold_process import FoldProcess
from churnwatch.metrics import WorkerMetrics
from churnwatch.ordering import EventTimeMerge, IdleClock
from churnwatch.pipeline import BatchResult, RawRecord, decode_batch
from churnwatch.settings import Settings
from churnwatch.topics import (
    CHURN_ALERTS,
    CUSTOMER_CHANGES,
    DEAD_LETTERS,
    REKEYED,
    WINBACK_OUTCOMES,
    WINBACK_TASKS,
)

ORIGIN_HEADER = "churnwatch-origin"
ORIGIN_TOPIC_HEADER = "churnwatch-origin-topic"
#: back-off between retries of a failed store step (seconds)
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0


def _header(headers: Any, name: str) -> str | None:
    items: Iterable[tuple[str, bytes]] = (
        headers.items() if isinstance(headers, dict) else (headers or ())
    )
    for key, value in items:
        if key == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def raw_record(event: EventT) -> RawRecord:
    """The wire view of a Faust event, with the origin of re-keyed records."""
    msg = event.message
    return RawRecord(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key,
        value=msg.value,
        origin_topic=_header(msg.headers, ORIGIN_TOPIC_HEADER),
        origin=_header(msg.headers, ORIGIN_HEADER),
    )


class _OrderedApp(faust.App):
    """A Faust app that lets go of the records held for event-time order.

    Held records are not acknowledged, so their offsets are not committed; at a
    rebalance or a stop they are dropped, Faust stops waiting for them, and
    the broker delivers them again to the partition's next owner.
    """

    merge: EventTimeMerge[tuple[RawRecord, Event, EventT]] | None = None
    fold: FoldProcess | None = None

    async def on_start(self) -> None:
        """Start as Faust does, and the fold's process before the consumer joins."""
        await super().on_start()
        if self.fold is not None:
            await self.fold.start()

    def on_rebalance_start(self) -> None:
        """Drop the held records before Faust waits for in-flight ones."""
        super().on_rebalance_start()
        if self.merge is not None and (dropped := self.merge.drop()):
            self.log.info("rebalance: %d records held for ordering go back to the broker", dropped)

    async def on_stop(self) -> None:
        """Drop the held records, stop as Faust does, then stop the fold's process."""
        if self.merge is not None:
            self.merge.drop()
        await super().on_stop()
        if self.fold is not None:
            await self.fold.close()


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
        "web_host": settings.web_host,
        "broker_credentials": settings.kafka_security.faust_credentials(),
    }


def create_app(settings: Settings, bootstrap: str, engine: Engine) -> faust.App:
    """Build the worker's Faust app against ``bootstrap`` and the store ``engine``."""
    app = _OrderedApp(settings.app_id, **app_options(settings, bootstrap))
    metrics = WorkerMetrics()
    register_web(app, engine, metrics)
    input_names = (*INPUT_TOPICS, REKEYED)
    inputs = app.topic(*input_names, key_serializer="raw", value_serializer="raw")
    rekeyed = app.topic(REKEYED, key_serializer="raw", value_serializer="raw")
    alerts_out = app.topic(CHURN_ALERTS, key_serializer="raw", value_serializer="json")
    tasks_out = app.topic(WINBACK_TASKS, key_serializer="raw", value_serializer="json")
    dead_out = app.topic(DEAD_LETTERS, key_serializer="raw", value_serializer="json")
    changes_out = app.topic(CUSTOMER_CHANGES, key_serializer="raw", value_serializer="json")
    fold = app.fold = FoldProcess(settings)

    # The hot copy of customer state lives in the fold's process and is reloaded
    # from the store on every assignment: the store decides. A changelog-backed Faust
    # table is deliberately not used: on the embedded broker its recovery after
    # a restart stalls the input stream (measured; DESIGN.md's high-watermark
    # bug), and a miss in the copy is read from the store anyway.
    @app.on_partitions_assigned.connect
    async def load_state_from_store(sender: Any, assigned: set[TP], **_: Any) -> None:
        partitions = sorted({tp.partition for tp in assigned if tp.topic in input_names})
        count = await fold.reload(partitions)
        app.log.info("loaded %d customer states for partitions %s", count, partitions)
        # what a previous owner stored but did not get to send
        unsent = await asyncio.to_thread(outbox.pending, engine, partitions)
        if unsent.alerts or unsent.tasks:
            app.log.info(
                "sending %d alerts and %d tasks left unsent",
                len(unsent.alerts),
                len(unsent.tasks),
            )
            await send_alerts(unsent.alerts, unsent.tasks)

    async def send_alerts(alerts: list[dict], tasks: list[dict]) -> None:
        """Send alerts and tasks, then mark them sent (the outbox)."""
        for alert in alerts:
            await alerts_out.send(key=alert["customer_id"].encode(), value=alert)
        for task in tasks:
            await tasks_out.send(key=task["customer_id"].encode(), value=task)
        if alerts or tasks:
            # sends are buffered: mark them only once the broker has them
            await app.producer.flush()
            alert_ids = [a["alert_id"] for a in alerts]
            task_ids = [t["task_id"] for t in tasks]
            await asyncio.to_thread(outbox.mark_sent, engine, alert_ids, task_ids)

    async def publish(result: BatchResult) -> None:
        metrics.events_out.labels(REKEYED).inc(len(result.misrouted))
        metrics.events_out.labels(CHURN_ALERTS).inc(len(result.alerts))
        metrics.events_out.labels(WINBACK_TASKS).inc(len(result.tasks))
        metrics.events_out.labels(CUSTOMER_CHANGES).inc(len(result.changes))
        metrics.events_out.labels(DEAD_LETTERS).inc(len(result.dead_letters))
        for customer_id, record in result.misrouted:
            await rekeyed.send(
                key=customer_id.encode(),
                value=record.value,
                headers={
                    ORIGIN_HEADER: record.source.encode(),
                    ORIGIN_TOPIC_HEADER: record.event_topic.encode(),
                },
            )
        await send_alerts(result.alerts, result.tasks)
        for change in result.changes:
            await changes_out.send(key=change["customer_id"].encode(), value=change)
        for letter in result.dead_letters:
            await dead_out.send(key=None, value=letter)

    async def until_stored(step: Callable[[], Awaitable[BatchResult]]) -> BatchResult:
        """Run a store step in the fold's process, retrying until it commits.

        A step that raised must not end the agent: Faust would ack the batch on
        the way out and its events would be lost. The store is idempotent and a
        failed step leaves nothing behind, so retrying the same batch is safe;
        while the store is unreachable the worker waits rather than drops data.
        """
        delay = RETRY_FIRST_S
        while True:
            try:
                return await step()
            except Exception:
                app.log.exception("store step failed; retrying in %.1f s", delay)
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

    outcomes_in = app.topic(WINBACK_OUTCOMES, key_serializer="raw", value_serializer="raw")

    @app.agent(outcomes_in, name="outcomes")
    async def outcomes(stream: faust.StreamT) -> None:
        batches = stream.take_events(settings.batch_size, within=settings.batch_within_s)
        async for events in batches:
            records = [raw_record(event) for event in events]
            metrics.outcomes.inc(len(records))
            await publish(await until_stored(partial(fold.record_outcomes, records)))

    clock = IdleClock()
    merge: EventTimeMerge[tuple[RawRecord, Event, EventT]] = EventTimeMerge(
        input_names, idle_s=settings.order_idle_s, max_held=settings.order_max_held, clock=clock
    )
    app.merge = merge
    #: records held beyond this many make the intake wait for a fold; room
    #: for a backlog's coarse releases to fold while the next ones gather
    high_water = min(16 * settings.batch_size, settings.order_max_held)
    counting: asyncio.Future[None] | None = None
    #: set whenever the counting has folded a release
    folded = asyncio.Event()

    async def count_released() -> None:
        """Fold what the merge lets go, publish what it raised, acknowledge it; repeat."""
        try:
            while ready := merge.release(force=app.rebalancing):
                started = time.perf_counter()
                records = [record for record, _, _ in ready]
                result = await until_stored(partial(fold.process, records))
                metrics.observe_batch(result, time.perf_counter() - started)
                await publish(result)
                for _, _, held in ready:
                    held.ack()
                folded.set()
        finally:
            folded.set()  # the intake must not wait on counting that has ended

    async def take_in(events: list[EventT]) -> None:
        """Decode a consumed batch and hold its valid records for the merge."""
        records = [raw_record(e) for e in events]
        # Decoded here for the merge's event times, and again by the fold's
        # process, which gets raw records: cheaper to send than events.
        decoded = decode_batch(records, now=store.utcnow(), max_future_s=settings.max_future_s)
        metrics.observe_consumed(Counter(r.topic for r in records), decoded)
        await publish(decoded)
        by_position = {(e.message.tp, e.message.offset): e for e in events}
        for record, event in decoded.accepted:
            held = by_position[(TP(record.topic, record.partition), record.offset)]
            # one more reference: the batch's own ack leaves it unacknowledged
            held.message.incref()
            merge.add(
                record.topic,
                record.partition,
                (event.epoch_s, event.event_id),
                (record, event, held),
            )
        observe_lag(events)

    def count() -> asyncio.Future[None]:
        """The counting under way, started if there is none.

        Counting runs beside the intake, so that Faust takes in the next batch
        while the fold's process counts this one. Started as one of the app's
        futures: one that fails crashes the worker, as a timer's would.
        """
        nonlocal counting
        if counting is None or counting.done():
            counting = app.add_future(count_released())
        return counting

    @app.agent(inputs, name="intake")
    async def intake(stream: faust.StreamT) -> None:
        batches = stream.take_events(settings.batch_size, within=settings.batch_within_s)
        async for events in batches:
            # The idle clock stands still while the intake is not taking in:
            # a topic is not quiet because the worker stopped listening.
            with clock.busy():
                await take_in(events)
                if not count().done() and len(merge) >= high_water:
                    folded.clear()
                    await folded.wait()  # one fold, not the whole backlog

    @app.timer(interval=max(settings.order_idle_s / 2, 0.05))
    async def release_quiet_partitions() -> None:
        """Let go of what waited on topics that have since gone quiet."""
        if len(merge):
            count()

    return app
