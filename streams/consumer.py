"""A Faust app whose Kafka consumer does not sit 1.5 s on a fetch that finds nothing.

faust-streaming builds the worker's aiokafka consumer with ``fetch_max_wait_ms``
fixed at 1,500. A broker that holds an empty fetch for that long (the embedded
one does) shows a record produced meanwhile only at its next check, so an
alert waits up to the full 1.5 s before its event is even consumed. The
consumer thread here sets the wait on the not-yet-started aiokafka consumer,
before its fetcher reads it; everything else stays as Faust builds it.
"""

from __future__ import annotations

from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands this to its fetcher in ``start()``, which comes later
        consumer._fetch_max_wait_ms = cast(FetchWaitApp, self.app).fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class FetchWaitApp(faust.App):
    """A Faust app on Kafka whose consumer's empty fetches end after ``fetch_max_wait_ms``."""

    def __init__(self, id: str, *, fetch_max_wait_ms: int, **options: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(id, **options)

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
