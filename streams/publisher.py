"""Sends what a batch produced to its topics, after the store has committed it."""

from __future__ import annotations

from collections.abc import Sequence

import faust
from sqlalchemy.engine import Engine

from churnwatch.engine.commit import Committed
from churnwatch.records import DeadLetter, RawRecord
from churnwatch.streams.delivery import Delivery
from churnwatch.streams.metrics import WorkerMetrics
from churnwatch.streams.wire import origin_headers
from churnwatch.topics import (
    CHURN_ALERTS,
    CUSTOMER_CHANGES,
    DEAD_LETTERS,
    REKEYED,
    WINBACK_TASKS,
)
from churnwatch.winback.tasks import for_contact


class Publisher:
    """The worker's output topics, and the outbox that proves what went out."""

    def __init__(self, app: faust.App, engine: Engine, metrics: WorkerMetrics) -> None:
        self.app = app
        self.engine = engine
        self.metrics = metrics
        self.rekeyed = app.topic(REKEYED, key_serializer="raw", value_serializer="raw")
        self.alerts = app.topic(CHURN_ALERTS, key_serializer="raw", value_serializer="json")
        self.tasks = app.topic(WINBACK_TASKS, key_serializer="raw", value_serializer="json")
        self.dead = app.topic(DEAD_LETTERS, key_serializer="raw", value_serializer="json")
        self.changes = app.topic(CUSTOMER_CHANGES, key_serializer="raw", value_serializer="json")
        #: alerts, tasks and changes go through the outbox
        self.delivery = Delivery(
            engine, {"alerts": self.alerts, "tasks": self.tasks, "changes": self.changes}
        )

    async def reject(
        self,
        dead_letters: Sequence[DeadLetter],
        misrouted: Sequence[tuple[str, RawRecord]] = (),
    ) -> None:
        """Re-key the misrouted records and send the dead letters."""
        self.metrics.events_out.labels(REKEYED).inc(len(misrouted))
        self.metrics.events_out.labels(DEAD_LETTERS).inc(len(dead_letters))
        for customer_id, record in misrouted:
            await self.rekeyed.send(
                key=customer_id.encode(), value=record.value, headers=origin_headers(record)
            )
        for letter in dead_letters:
            await self.dead.send(key=None, value=letter.to_json())

    async def publish(self, result: Committed) -> None:
        """Everything a committed batch produced."""
        tasks = [task for task in result.tasks if for_contact(task)]  # held-out: not sent
        self.metrics.events_out.labels(CHURN_ALERTS).inc(len(result.alerts))
        self.metrics.events_out.labels(WINBACK_TASKS).inc(len(tasks))
        self.metrics.events_out.labels(CUSTOMER_CHANGES).inc(len(result.changes))
        await self.delivery.send("alerts", result.alerts)
        await self.delivery.send("tasks", tasks)
        await self.delivery.send("changes", result.changes)
        await self.reject(result.dead_letters)
